"""The search's rules that need no database: what a query may be, the LIKE pattern of its
literal match, and the keyset cursor of its ranked pages."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import msgspec

from service.core import cursor
from service.core.errors import InvalidInput
from service.core.validation import reject_nul

# Longer queries are not searches but pasted documents; they only make the LIKE match slow.
MAX_QUERY_CHARS = 256
# Characters LIKE gives a meaning to (with its default escape character, the backslash).
_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def checked_query(q: str) -> str:
    """The query without surrounding whitespace; refused when empty, too long or holding NUL."""
    reject_nul(q, "q")
    query = q.strip()
    if not query:
        raise InvalidInput("say what to search for", field="q")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"at most {MAX_QUERY_CHARS} characters", field="q")
    return query


def like_pattern(query: str) -> str:
    """The (I)LIKE pattern matching text that contains ``query`` literally."""
    return f"%{query.translate(_LIKE_SPECIAL)}%"


class Position(NamedTuple):
    """Where a page of hits ends, in their order (rank, created_at, conversation_id, seq),
    all descending."""

    rank: float
    created_at: datetime
    conversation_id: UUID
    seq: int


# Before the first page: ranks above any rank, times after any time.
START = Position(float("inf"), *cursor.START, 2**63 - 1)


class _Token(msgspec.Struct, array_like=True, tag="search"):
    rank: float
    created_at: datetime
    conversation_id: UUID
    seq: int


def encode(position: Position) -> str:
    return cursor.pack(_Token(*position))


def decode(token: str | None) -> Position:
    """The position a search's next_cursor stands for (START for none)."""
    if token is None:
        return START
    found = cursor.unpack(token, _Token)
    if found.created_at.tzinfo is None:
        raise InvalidInput("not a cursor this service issued", field="cursor")
    return Position(found.rank, found.created_at, found.conversation_id, found.seq)
