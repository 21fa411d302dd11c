"""Python client for chatkeep, the conversation-history service.

    from chatkeep_client import Chatkeep

    with Chatkeep("http://localhost:8000", api_key=KEY) as chatkeep:
        chatkeep.messages.append(conversation_id, [{"role": "user", "content": "Hi!"}])
        history = chatkeep.messages.list(conversation_id).items

See client/README.md.
"""

from chatkeep_client._call import ext
from chatkeep_client.aio import AsyncChatkeep
from chatkeep_client.client import Chatkeep
from chatkeep_client.errors import (
    BadRequest,
    ChatkeepError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    RangeNotSatisfiable,
    RateLimited,
    RequestTimeout,
    ServerError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from chatkeep_client.models import (
    AccessToken,
    Appended,
    Conversation,
    ConversationPage,
    ConversationsErased,
    Erased,
    FileInfo,
    FilePage,
    Message,
    MessagePage,
    NewMessage,
    PromptPage,
    PromptSummary,
    PromptVersion,
    PromptVersionPage,
)
from chatkeep_client.retry import Retry

__all__ = [
    "AccessToken",
    "Appended",
    "AsyncChatkeep",
    "BadRequest",
    "Chatkeep",
    "ChatkeepError",
    "Conflict",
    "ConnectionFailed",
    "Conversation",
    "ConversationPage",
    "ConversationsErased",
    "Erased",
    "FileInfo",
    "FilePage",
    "Forbidden",
    "InvalidInput",
    "Message",
    "MessagePage",
    "NewMessage",
    "NotFound",
    "PreconditionFailed",
    "PromptPage",
    "PromptSummary",
    "PromptVersion",
    "PromptVersionPage",
    "QuotaExceeded",
    "RangeNotSatisfiable",
    "RateLimited",
    "RequestTimeout",
    "Retry",
    "ServerError",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "ext",
]
