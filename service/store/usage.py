"""What users and anonymous visitors own, for their quotas (queries in sql/usage.sql).

Triggers keep the counts (migrations/0007.usage.sql); this only reads them.
"""

from __future__ import annotations

from typing import Literal, NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.db.pool import Connection
from service.db.queries import queries


class Usage(NamedTuple):
    # Who owns the conversation; None for one made by an API key for nobody (no quota).
    owner: Literal["user", "visitor"] | None
    # The owner's conversations and bytes (0 when there is no owner).
    conversations: int
    bytes: int


async def of_conversation(conn: Connection, *, conversation_id: UUID, scope: Scope) -> Usage | None:
    """The usage of the conversation's owner; None when the conversation is missing or outside
    the scope."""
    row = await queries().one(
        conn, "usage.of_conversation", conversation_id=conversation_id, **scope
    )
    if row is None:
        return None
    return Usage(row["owner"], row["conversations"] or 0, row["bytes"] or 0)
