"""Opaque keyset cursors for listings: (a timestamp, id) of the last row seen."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import msgspec

from service.core.errors import InvalidInput

_T = TypeVar("_T")

# The position before the first page of a newest-first listing: later than any row.
START = (datetime(9999, 12, 31, tzinfo=UTC), UUID(int=(1 << 128) - 1))
# The same for an oldest-first listing: earlier than any row.
START_ASCENDING = (datetime(1, 1, 1, tzinfo=UTC), UUID(int=0))


class _Position(msgspec.Struct, array_like=True):
    updated_at: datetime
    id: UUID
    # The order of the listing that issued it (e.g. "created_at"), for listings offering more
    # than one: a position in one order means nothing in another. None in cursors of listings
    # with one order, and in those issued before listings had orders.
    order: str | None = None


def pack(position: msgspec.Struct) -> str:
    """A position as an opaque token: its JSON, base64url without padding."""
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def unpack(token: str, kind: type[_T]) -> _T:
    """The position a token of ``pack`` holds; InvalidInput naming the cursor for anything
    else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise InvalidInput("not a cursor this service issued", field="cursor") from exc


def encode(updated_at: datetime, conversation_id: UUID, order: str | None = None) -> str:
    return pack(_Position(updated_at, conversation_id, order))


def decode(
    cursor: str | None, start: tuple[datetime, UUID] = START, order: str | None = None
) -> tuple[datetime, UUID]:
    """The keyset position a cursor stands for; ``start`` when there is none. A cursor issued
    for another ``order`` is refused; one issued without an order is taken in any."""
    if cursor is None:
        return start
    position = unpack(cursor, _Position)
    if position.updated_at.tzinfo is None:
        raise InvalidInput("not a cursor this service issued", field="cursor")
    if position.order is not None and position.order != order:
        raise InvalidInput(
            f"this cursor belongs to a listing sorted by {position.order}, not this one",
            field="cursor",
        )
    return position.updated_at, position.id
