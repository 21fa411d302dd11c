"""Checks that depend on configured limits, or that JSON decoding cannot express.

PostgreSQL cannot store NUL (U+0000) in text or jsonb, so NUL is refused here with a 422 rather
than reaching the database. Sizes are measured in UTF-8 bytes, as stored.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.core.errors import InvalidInput, TooLarge
from service.core.schemas import ConversationCreate, ConversationPatch, MessageBatch, MessagePatch
from service.core.settings import Settings

NUL = "\x00"
# Deeper than any real metadata; stops pathological nesting before PostgreSQL sees it.
MAX_METADATA_DEPTH = 32


def reject_nul(value: str | None, field: str) -> None:
    if value is not None and NUL in value:
        raise InvalidInput("NUL characters (\\u0000) cannot be stored", field=field)


def _check_json_tree(value: Any, field: str, depth: int = 0) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInput(f"nested deeper than {MAX_METADATA_DEPTH} levels", field=field)
    if isinstance(value, str):
        reject_nul(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key, f"{field}.{key}")
            _check_json_tree(item, f"{field}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_tree(item, f"{field}[{index}]", depth + 1)


def check_metadata(metadata: dict[str, Any], field: str, settings: Settings) -> None:
    size = len(msgspec.json.encode(metadata))
    if size > settings.max_metadata_bytes:
        raise TooLarge(
            f"metadata is {size} bytes; the limit is {settings.max_metadata_bytes}", field=field
        )
    _check_json_tree(metadata, field)


def check_content(content: str, field: str, settings: Settings) -> None:
    # Counting characters first avoids encoding short strings: UTF-8 is at most 4 bytes a char.
    if len(content) * 4 > settings.max_content_bytes:
        size = len(content.encode())
        if size > settings.max_content_bytes:
            raise TooLarge(
                f"content is {size} bytes; the limit is {settings.max_content_bytes}", field=field
            )
    reject_nul(content, field)


def check_conversation_create(body: ConversationCreate, settings: Settings) -> None:
    reject_nul(body.title, "title")
    reject_nul(body.user_id, "user_id")
    reject_nul(body.external_id, "external_id")
    check_metadata(body.metadata, "metadata", settings)


def check_conversation_patch(
    body: ConversationPatch, settings: Settings, field_prefix: str = ""
) -> None:
    if isinstance(body.title, str):
        reject_nul(body.title, f"{field_prefix}title")
    if isinstance(body.metadata, dict):
        check_metadata(body.metadata, f"{field_prefix}metadata", settings)


def check_message_batch(body: MessageBatch, settings: Settings) -> None:
    if len(body.messages) > settings.max_batch:
        raise TooLarge(
            f"{len(body.messages)} messages in one batch; the limit is {settings.max_batch}",
            field="messages",
        )
    reject_nul(body.user_id, "user_id")
    if isinstance(body.conversation, ConversationPatch):
        check_conversation_patch(body.conversation, settings, "conversation.")
    seen: set[Any] = set()
    for index, message in enumerate(body.messages):
        where = f"messages[{index}]"
        check_content(message.content, f"{where}.content", settings)
        reject_nul(message.topic, f"{where}.topic")
        reject_nul(message.external_id, f"{where}.external_id")
        check_metadata(message.metadata, f"{where}.metadata", settings)
        for name, key in (("id", message.id), ("external_id", message.external_id)):
            if key is not None:
                if (name, key) in seen:
                    raise InvalidInput(
                        f"the same {name} appears twice in one batch", field=f"{where}.{name}"
                    )
                seen.add((name, key))


def check_message_patch(body: MessagePatch, settings: Settings) -> None:
    if isinstance(body.content, str):
        check_content(body.content, "content", settings)
    if isinstance(body.metadata, dict):
        check_metadata(body.metadata, "metadata", settings)


def check_page_limit(limit: int, settings: Settings) -> None:
    if not 1 <= limit <= settings.max_page:
        raise InvalidInput(f"limit must be between 1 and {settings.max_page}", field="limit")


def page_size(limit: int | None, settings: Settings) -> int:
    """The ``limit`` a listing asks for, checked, or the default page size."""
    size = settings.default_page if limit is None else limit
    check_page_limit(size, settings)
    return size
