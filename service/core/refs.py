"""How a request names a conversation: by its UUID, or as ``ext:{external_id}`` by the id the
application gave it (unique within the conversation's owner)."""

from __future__ import annotations

import re
from typing import NamedTuple
from uuid import UUID

from service.core.errors import InvalidInput
from service.core.validation import NUL

EXTERNAL_PREFIX = "ext:"
MAX_EXTERNAL_ID = 255
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# What a conversation's name in a path may be (the OpenAPI document states it too).
CONVERSATION_REF_PATTERN = rf"^({_UUID}|{EXTERNAL_PREFIX}[^\u0000]{{1,{MAX_EXTERNAL_ID}}})$"
_CANONICAL_UUID = re.compile(_UUID)


class ExternalRef(NamedTuple):
    external_id: str

    def __str__(self) -> str:
        return f"{EXTERNAL_PREFIX}{self.external_id}"


ConversationRef = UUID | ExternalRef


def parse_conversation_ref(text: str, field: str = "conversation_id") -> ConversationRef:
    if text.startswith(EXTERNAL_PREFIX):
        external_id = text[len(EXTERNAL_PREFIX) :]
        if not 1 <= len(external_id) <= MAX_EXTERNAL_ID or NUL in external_id:
            raise InvalidInput(
                f"an external id is 1 to {MAX_EXTERNAL_ID} characters, without NUL", field=field
            )
        return ExternalRef(external_id)
    if not _CANONICAL_UUID.fullmatch(text):
        raise InvalidInput(
            "a conversation is named by its UUID or as ext:{external_id}", field=field
        )
    return UUID(text)
