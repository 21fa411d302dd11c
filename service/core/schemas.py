"""Request and response bodies of the HTTP API (msgspec Structs; also the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from service.core import accounts

# The same rule as the messages_role constraint in migrations/0008.app_needs.sql.
ROLE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
CORE_ROLES = ("system", "user", "assistant", "tool")
Role = Annotated[
    str,
    Meta(
        pattern=ROLE_PATTERN,
        description="system, user, assistant or tool, or any role name of the application: "
        "a lowercase letter, then up to 31 lowercase letters, digits, '_' or '-'.",
    ),
]
Metadata = dict[str, Any]
# Metadata read back from PostgreSQL: the stored JSON bytes, passed through to the response
# without being parsed into Python objects and encoded again (see service/db/pool.py).
StoredMetadata = Annotated[msgspec.Raw, Meta(description="A JSON object, as stored.")]
Title = Annotated[str, Meta(max_length=1000, description="Free text, at most 1000 characters.")]
UserId = Annotated[
    str, Meta(min_length=1, max_length=255, description="The application's user id.")
]
ExternalId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        description="The application's own id (e.g. from the store it came from), unique "
        "within its owner.",
    ),
]
Topic = Annotated[
    str,
    Meta(min_length=1, max_length=255, description="Optional label partitioning a conversation."),
]
# Token counts are PostgreSQL integers (messages.tokens).
MAX_TOKENS = 2**31 - 1
Tokens = Annotated[
    int,
    Meta(
        ge=0,
        le=MAX_TOKENS,
        description="The message's token count by the model's own tokenizer; when left out, "
        'the service estimates it (README "The context window").',
    ),
]
# A string, parsed strictly (service.core.filters.instant): decoded as a datetime, a number
# would pass as seconds since 1970.
ExpiresAt = Annotated[
    str,
    Meta(
        description="When the next prune deletes the conversation (RFC 3339 with its offset; "
        "a time already past: the next prune); null: never.",
    ),
]


# A message being written (a streamed reply) is in_progress until it is finalised.
MessageStatus = Literal["in_progress", "complete"]


class Conversation(Struct):
    id: UUID
    title: str | None
    user_id: str | None
    metadata: StoredMetadata
    message_count: int
    created_at: datetime
    updated_at: datetime
    external_id: str | None
    # Bumped by every change to the conversation or its messages; also its ETag.
    version: int
    # When the next prune deletes it (null: never, unless it is an idle visitor's).
    expires_at: datetime | None


class ConversationCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    id: UUID | None = None
    external_id: ExternalId | None = None
    title: Title | None = None
    user_id: UserId | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    expires_at: ExpiresAt | None = None


class ConversationPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay as they are; ``title: null`` clears the title; metadata is replaced."""

    title: Title | UnsetType | None = UNSET
    metadata: Metadata | UnsetType = UNSET
    # null clears the expiry.
    expires_at: ExpiresAt | UnsetType | None = UNSET


class ConversationPage(Struct, kw_only=True):
    items: list[Conversation]
    next_cursor: str | None = None


class Message(Struct):
    id: UUID
    conversation_id: UUID
    seq: int
    role: Role
    content: str
    topic: str | None
    metadata: StoredMetadata
    created_at: datetime
    external_id: str | None
    # Given on append, or estimated (README "The context window").
    tokens: int
    # in_progress while a reply is streamed into it (README "Live updates"); last, defaulted.
    status: MessageStatus = "complete"


class NewMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role
    content: str
    id: UUID | None = None
    external_id: ExternalId | None = None
    topic: Topic | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    tokens: Tokens | None = None
    # in_progress: a reply to be extended (POST .../messages/{message_id}/append).
    status: MessageStatus = "complete"


class MessageBatch(Struct, kw_only=True, forbid_unknown_fields=True):
    messages: Annotated[list[NewMessage], Meta(min_length=1)]
    # Owner of the conversation when this append creates it.
    user_id: UserId | None = None
    # The conversation's state change that goes with these messages: its metadata is applied as
    # an RFC 7396 merge patch, in the append's transaction.
    conversation: ConversationPatch | UnsetType = UNSET


class MessagePatch(Struct, kw_only=True, forbid_unknown_fields=True):
    content: str | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET
    # New content without tokens gets a new estimate.
    tokens: Tokens | UnsetType = UNSET


class MessageAppend(Struct, kw_only=True, forbid_unknown_fields=True):
    """More text for an in-progress message (a streamed reply), and its status after it."""

    content: str = ""
    # complete: the reply is finished, it takes no more text.
    status: MessageStatus = "in_progress"
    # The whole message's token count after it; left out: estimated again.
    tokens: Tokens | None = None


class MessageList(Struct, kw_only=True):
    items: list[Message]


class MessagePage(Struct, kw_only=True):
    items: list[Message]
    # Pass as `before` (backward paging) or `after` (forward paging) for the next page.
    next_cursor: int | None = None
    # Only in a context window (max_tokens; README "The context window"), left out otherwise:
    # the prompt asked for, the tokens of the prompt and the items together, and whether older
    # messages were left out (then next_cursor, passed as `before`, pages through them).
    prompt: ContextPrompt | UnsetType = UNSET
    tokens: int | UnsetType = UNSET
    truncated: bool | UnsetType = UNSET


class Cleared(Struct, kw_only=True):
    deleted: int


class Claim(Struct, kw_only=True, forbid_unknown_fields=True):
    session_id: Annotated[
        str, Meta(description="The visitor's X-Session-ID whose conversations move to the user.")
    ]


class Claimed(Struct, kw_only=True):
    # Conversations moved by this call (0 when they were claimed already).
    claimed: int


class Erased(Struct, kw_only=True):
    conversations: int
    messages: int


class ConversationCount(Struct, kw_only=True):
    count: int


class ConversationsErased(Struct, kw_only=True):
    """What a bulk delete removed: the conversations and, with them, their messages and files."""

    conversations: int
    messages: int
    files: int


class FileInfo(Struct):
    """A file attached to a conversation. Messages refer to it by id in their metadata
    (by convention ``{"files": ["<file id>"]}``)."""

    id: UUID
    conversation_id: UUID
    filename: str
    content_type: str
    size: int
    # Hex SHA-256 of the content; also the download's ETag.
    sha256: str
    created_at: datetime
    metadata: StoredMetadata


class FilePage(Struct, kw_only=True):
    items: list[FileInfo]
    next_cursor: str | None = None


class FilePatch(Struct, kw_only=True, forbid_unknown_fields=True):
    """A file's metadata, replaced whole."""

    metadata: Metadata


# The same rule as the prompts_name constraint in migrations/0005.prompts.sql.
PROMPT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class PromptPut(Struct, kw_only=True, forbid_unknown_fields=True):
    content: str
    metadata: Metadata = msgspec.field(default_factory=dict)


class PromptVersion(Struct):
    name: str
    version: int
    content: str
    metadata: StoredMetadata
    created_at: datetime


class ContextPrompt(PromptVersion):
    """A prompt version at the head of a context window, with its estimated token count."""

    tokens: int


class PromptVersionPage(Struct, kw_only=True):
    items: list[PromptVersion]
    # Pass as `before` for the next (older) page.
    next_cursor: int | None = None


class PromptSummary(Struct):
    name: str
    latest_version: int
    created_at: datetime
    updated_at: datetime


class PromptPage(Struct, kw_only=True):
    items: list[PromptSummary]
    # Pass as `after` for the next page.
    next_cursor: str | None = None


class Liveness(Struct, kw_only=True):
    status: Literal["ok"] = "ok"


class Readiness(Struct, kw_only=True):
    # "draining": shutting down (SIGTERM); a load balancer should stop sending requests.
    status: Literal["ready", "not ready", "draining"]
    database: bool
    pending_migrations: list[str]


class TokenRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """A login: an account's username and password (README "Accounts")."""

    username: Annotated[
        str,
        Meta(
            max_length=accounts.MAX_USERNAME_LENGTH,
            pattern=accounts.USERNAME_PATTERN,
            description=f"The account's username: {accounts.USERNAME_RULE}.",
        ),
    ]
    password: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=accounts.MAX_PASSWORD_LENGTH,
            pattern=accounts.NO_NUL_PATTERN,
            description=f"At most {accounts.MAX_PASSWORD_LENGTH} characters; no NUL.",
        ),
    ]


class AccessToken(Struct, kw_only=True):
    """A user token for the account (OAuth 2.0's token response, RFC 6749 section 5.1)."""

    # Send as `Authorization: Bearer <access_token>`.
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    # Seconds the token is valid from now (CHATKEEP_ACCOUNT_TOKEN_SECONDS).
    expires_in: int
    # The user id the token names (its sub): the owner of the conversations it creates.
    user_id: str


class DemoLogin(Struct, kw_only=True, forbid_unknown_fields=True):
    """The demo chat's log-in (README "Demo chat"): any name, no password; the token names the
    user ``demo:<username>``."""

    username: Annotated[
        str,
        Meta(
            pattern="^[A-Za-z0-9._-]{1,64}$",
            description="1 to 64 letters, digits, `.`, `_` or `-`.",
        ),
    ]


def same_json(stored: msgspec.Raw, value: Any) -> bool:
    """Whether stored JSON equals a request's value (jsonb normalises key order and spacing,
    so the bytes cannot be compared)."""
    return bool(msgspec.json.decode(stored) == value)


class SearchHit(Struct):
    """A message matching a search (GET /v1/search), with where it is."""

    conversation_id: UUID
    # The conversation's title (null when it has none).
    conversation_title: str | None
    seq: int
    message_id: UUID
    role: str
    topic: str | None
    created_at: datetime
    # Higher is better: 1 for the query's literal occurrence, plus up to 1 for its words.
    rank: float
    # An excerpt of the content, HTML-escaped, each match between <mark> and </mark>.
    snippet: str


class SearchPage(Struct, kw_only=True):
    items: list[SearchHit]
    next_cursor: str | None = None
