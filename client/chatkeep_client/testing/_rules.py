"""The service's rules the fake's operations share: input checks (service/core/validation.py),
merge patches and containment as PostgreSQL applies them, conversation names, If-Match,
cursors."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from chatkeep_client.testing._problems import Problem, invalid

# The service's defaults (README "Configuration").
MAX_CONTENT_BYTES = 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024
MAX_BATCH = 100
MAX_PAGE = 1000
DEFAULT_PAGE = 50
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_SEQ = 2**63 - 1
MAX_METADATA_DEPTH = 32
NUL = "\x00"
# The same rule as the prompts_name constraint (migrations/0005.prompts.sql).
PROMPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SESSION_ID = re.compile(r"[A-Za-z0-9._~:-]{16,256}")
EXTERNAL_PREFIX = "ext:"
SORTS = ("updated_at", "created_at")


def reject_nul(value: str | None, name: str) -> None:
    if value is not None and NUL in value:
        raise invalid("NUL characters (\\u0000) cannot be stored", name)


def _check_tree(value: Any, name: str, depth: int = 0) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise invalid(f"nested deeper than {MAX_METADATA_DEPTH} levels", name)
    if isinstance(value, str):
        reject_nul(value, name)
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key, f"{name}.{key}")
            _check_tree(item, f"{name}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_tree(item, f"{name}[{index}]", depth + 1)


def check_metadata(metadata: dict[str, Any], name: str) -> None:
    size = len(msgspec.json.encode(metadata))
    if size > MAX_METADATA_BYTES:
        raise Problem(
            413, f"metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}", field=name
        )
    _check_tree(metadata, name)


def check_content(content: str, name: str) -> None:
    size = len(content.encode())
    if size > MAX_CONTENT_BYTES:
        raise Problem(413, f"content is {size} bytes; the limit is {MAX_CONTENT_BYTES}", field=name)
    reject_nul(content, name)


def page_size(limit: int | None) -> int:
    size = DEFAULT_PAGE if limit is None else limit
    if not 1 <= size <= MAX_PAGE:
        raise invalid(f"limit must be between 1 and {MAX_PAGE}", "limit")
    return size


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def contains(document: Any, pattern: Any) -> bool:
    """PostgreSQL's jsonb ``@>``."""
    if isinstance(pattern, dict):
        return isinstance(document, dict) and all(
            key in document and contains(document[key], value) for key, value in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(document, list) and all(
            any(contains(item, wanted) for item in document) for wanted in pattern
        )
    return type(document) is type(pattern) and bool(document == pattern)


def parse_ref(text: str) -> UUID | str:
    """A conversation's name in a path: its UUID, or ``ext:`` and an external id (returned as
    the external id)."""
    if text.startswith(EXTERNAL_PREFIX):
        external_id = text[len(EXTERNAL_PREFIX) :]
        if not 1 <= len(external_id) <= 255 or NUL in external_id:
            raise invalid("an external id is 1 to 255 characters, without NUL", "conversation_id")
        return external_id
    try:
        value = UUID(text)
    except ValueError:
        value = None
    if value is None or str(value) != text.lower():
        raise invalid(
            "a conversation is named by its UUID or as ext:{external_id}", "conversation_id"
        )
    return value


def parse_if_match(value: str | None) -> frozenset[int] | Literal["absent"] | None:
    """The versions an If-Match accepts: None for ``*``, "absent" without the header."""
    if value is None:
        return "absent"
    if value.strip() == "*":
        return None
    tags = value.split(",")
    versions = [re.fullmatch(r'\s*"([1-9][0-9]{0,18})"\s*', tag) for tag in tags]
    if len(tags) > 32 or not all(versions):
        raise invalid(
            'If-Match must be "*" or a list of ETags this service sent, such as "3"', "If-Match"
        )
    return frozenset(int(match[1]) for match in versions if match)


def encode_cursor(at: datetime, item_id: UUID | str, order: str) -> str:
    raw = msgspec.json.encode([at, str(item_id), order])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None, order: str) -> tuple[datetime, str] | None:
    if text is None:
        return None
    try:
        at, item_id, issued_for = msgspec.json.decode(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), type=tuple[datetime, str, str]
        )
    except (ValueError, msgspec.DecodeError):
        raise invalid("not a cursor this service issued", "cursor") from None
    if issued_for != order:
        raise invalid(
            f"this cursor belongs to a listing sorted by {issued_for}, not this one", "cursor"
        )
    return at, item_id


def visitor_key(session_id: str) -> str:
    """What the fake keeps of a visitor's id (the service keeps its SHA-256 too)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def metadata_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    reject_nul(text, "metadata")
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise invalid(
            'not valid JSON; a JSON object is expected, e.g. {"form_id": "f1"}', "metadata"
        ) from None
    if not isinstance(value, dict):
        raise invalid('a JSON object is expected, e.g. {"form_id": "f1"}', "metadata")
    check_metadata(value, "metadata")
    return value or None


def instant(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        value = None
    if value is None or value.tzinfo is None:
        raise invalid(
            "an RFC 3339 time with its UTC offset is expected, e.g. 2024-03-01T09:00:00Z", name
        )
    return value


def display_name(ref: object) -> str:
    return str(ref) if isinstance(ref, UUID) else f"{EXTERNAL_PREFIX}{ref}"
