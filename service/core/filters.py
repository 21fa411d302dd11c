"""The filters of the conversation listings, counts and bulk deletes, as query parameters give
them: checked here, so a bad one is a 422 naming its parameter, never a database error."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from service.core.errors import InvalidInput
from service.core.settings import Settings
from service.core.validation import check_metadata, reject_nul

# The orders a listing offers, newest first; the cursor of one is refused by the other.
Sort = Literal["updated_at", "created_at"]
SORTS: tuple[Sort, ...] = ("updated_at", "created_at")
METADATA_EXAMPLE = '{"form_id": "f1"}'


def metadata_filter(text: str | None, settings: Settings) -> dict[str, Any] | None:
    """The JSON object a conversation's metadata must contain (PostgreSQL's ``@>``: nested
    objects contained, arrays containing the elements given); None for no filter, as for ``{}``,
    which every object contains."""
    if text is None:
        return None
    size = len(text.encode())
    if size > settings.max_metadata_bytes:
        raise InvalidInput(
            f"the filter is {size} bytes; the limit is {settings.max_metadata_bytes}",
            field="metadata",
        )
    reject_nul(text, "metadata")
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidInput(
            f"not valid JSON; a JSON object is expected, e.g. {METADATA_EXAMPLE}", field="metadata"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"a JSON object is expected, e.g. {METADATA_EXAMPLE}", field="metadata")
    # NUL escaped as \u0000, and nesting beyond what metadata may hold.
    check_metadata(value, "metadata", settings)
    return value or None


def instant(text: str | None, field: str) -> datetime | None:
    """An RFC 3339 time with its offset (without one, which instant is meant is a guess); not a
    number of seconds, which a lenient parser would take."""
    if text is None:
        return None
    try:
        value = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(
            "an RFC 3339 time with its UTC offset is expected, e.g. 2024-03-01T09:00:00Z",
            field=field,
        )
    return value
