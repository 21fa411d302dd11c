"""The request bodies the fake accepts, with the service's rules (the service's own schemas,
service/core/schemas.py), and its way of naming the field a decoding error is about."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from chatkeep_client.testing._problems import Problem

T = TypeVar("T")

ROLE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
Role = Annotated[str, Meta(pattern=ROLE_PATTERN)]
Title = Annotated[str, Meta(max_length=1000)]
UserId = Annotated[str, Meta(min_length=1, max_length=255)]
ExternalId = Annotated[str, Meta(min_length=1, max_length=255)]
Topic = Annotated[str, Meta(min_length=1, max_length=255)]
Metadata = dict[str, Any]


class ConversationCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    id: UUID | None = None
    external_id: ExternalId | None = None
    title: Title | None = None
    user_id: UserId | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class ConversationPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title | UnsetType | None = UNSET
    metadata: Metadata | UnsetType = UNSET


class NewMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role
    content: str
    id: UUID | None = None
    external_id: ExternalId | None = None
    topic: Topic | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class MessageBatch(Struct, kw_only=True, forbid_unknown_fields=True):
    messages: Annotated[list[NewMessage], Meta(min_length=1)]
    user_id: UserId | None = None
    conversation: ConversationPatch | UnsetType = UNSET


class MessagePatch(Struct, kw_only=True, forbid_unknown_fields=True):
    content: str | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET


class FilePatch(Struct, kw_only=True, forbid_unknown_fields=True):
    metadata: Metadata


class PromptPut(Struct, kw_only=True, forbid_unknown_fields=True):
    content: str
    metadata: Metadata = msgspec.field(default_factory=dict)


class Claim(Struct, kw_only=True, forbid_unknown_fields=True):
    session_id: str


class TokenRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, Meta(min_length=1, max_length=255)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


# msgspec says where input went wrong as "... - at `$.messages[0].role`", a missing field as
# "Object missing required field `role`", an unexpected one as "... unknown field `x`".
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`$")


def _field_of(message: str) -> tuple[str, str]:
    match = _AT.match(message)
    assert match is not None  # the pattern matches any text
    path = (match["path"] or "").lstrip(".")
    if named := _NAMED.match(match["message"]):
        path = f"{path}.{named['name']}" if path else named["name"]
    return match["message"], path or "body"


def decode(body: bytes, kind: type[T]) -> T:
    """The request body as ``kind``: a 400 when it is not JSON, a 422 naming the field when it
    does not fit."""
    if not body:
        raise Problem(422, "a JSON request body is required", field="body")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as error:
        text, field = _field_of(str(error))
        raise Problem(422, text, field=field) from None
    except msgspec.DecodeError as error:
        raise Problem(400, f"malformed JSON: {error}", field="body") from None
