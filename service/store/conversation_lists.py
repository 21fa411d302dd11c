"""Conversations listed, counted and deleted in bulk (queries in sql/conversation_lists.sql).

Rows become Conversation Structs positionally: every listing query names its columns in the
Struct's field order (tests/integration/test_queries.py checks it against the database).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple
from uuid import UUID

from service.core.filters import Sort
from service.core.schemas import Conversation
from service.db.pool import Connection
from service.db.queries import queries

# Whose conversations: every one (a trusted caller), every one whose metadata contains a filter,
# one user's, one visitor's.
Subject = Literal["all", "matching", "user", "visitor"]


class _Queries(NamedTuple):
    # The listing query for each order, and the count.
    by_updated: str
    by_created: str
    counting: str
    # The name of the parameter holding the subject (True for a trusted caller).
    subject_parameter: str
    # Whether the queries take the metadata filter.
    filtered: bool


QUERIES: dict[Subject, _Queries] = {
    "all": _Queries(
        "conversation_lists.by_updated",
        "conversation_lists.by_created",
        "conversation_lists.count",
        "caller_trusted",
        filtered=False,
    ),
    "matching": _Queries(
        "conversation_lists.matching_by_updated",
        "conversation_lists.matching_by_created",
        "conversation_lists.count_matching",
        "caller_trusted",
        filtered=True,
    ),
    "user": _Queries(
        "conversation_lists.for_user_by_updated",
        "conversation_lists.for_user_by_created",
        "conversation_lists.count_for_user",
        "user_id",
        filtered=True,
    ),
    "visitor": _Queries(
        "conversation_lists.for_visitor_by_updated",
        "conversation_lists.for_visitor_by_created",
        "conversation_lists.count_for_visitor",
        "visitor_hash",
        filtered=True,
    ),
}


def _parameters(
    subject: Subject, value: bool | str | bytes, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    chosen = QUERIES[subject]
    parameters: dict[str, Any] = {chosen.subject_parameter: value}
    if chosen.filtered:
        parameters["metadata"] = metadata
    return parameters


async def page(
    conn: Connection,
    *,
    subject: Subject,
    value: bool | str | bytes,
    metadata: dict[str, Any] | None,
    sort: Sort,
    after_at: datetime,
    after_id: UUID,
    limit: int,
) -> list[Conversation]:
    """Newest first by ``sort``, strictly after the keyset position (after_at, after_id)."""
    chosen = QUERIES[subject]
    rows = await queries().many(
        conn,
        chosen.by_updated if sort == "updated_at" else chosen.by_created,
        after_at=after_at,
        after_id=after_id,
        max_rows=limit,
        **_parameters(subject, value, metadata),
    )
    return [Conversation(*row) for row in rows]


async def count(
    conn: Connection,
    *,
    subject: Subject,
    value: bool | str | bytes,
    metadata: dict[str, Any] | None,
) -> int:
    n: int = await queries().val(
        conn, QUERIES[subject].counting, **_parameters(subject, value, metadata)
    )
    return n


class ErasedBatch(NamedTuple):
    # Conversations the batch walked past (fewer than asked: the walk is over).
    walked: int
    # Where it stopped: the next batch starts after this position (None when it walked none).
    last_at: datetime | None
    last_id: UUID | None
    conversations: int
    messages: int
    files: int


async def plan_for_these_values(conn: Connection) -> None:
    """Within a transaction: plan its statements for the values they get (see the query)."""
    await queries().exec(conn, "conversation_lists.plan_for_these_values")


async def erase_batch(
    conn: Connection,
    *,
    caller_trusted: bool,
    user_id: str | None,
    metadata: dict[str, Any] | None,
    updated_before: datetime | None,
    after_at: datetime,
    after_id: UUID,
    limit: int,
    visitors_only: bool = False,
    expired_at: datetime | None = None,
) -> ErasedBatch:
    """Delete the next ``limit`` matching conversations, oldest updated first, after the
    position (after_at, after_id); the filters that are None do not apply (``visitors_only``:
    only anonymous visitors'; ``expired_at``: only those whose expiry is not after it). Nothing
    unless ``caller_trusted``."""
    row = await queries().one(
        conn,
        "conversation_lists.erase_batch",
        caller_trusted=caller_trusted,
        user_id=user_id,
        metadata=metadata,
        updated_before=updated_before,
        visitors_only=visitors_only,
        expired_at=expired_at,
        after_at=after_at,
        after_id=after_id,
        max_rows=limit,
    )
    assert row is not None  # aggregates always return a row
    return ErasedBatch(*row)
