"""Lookups the controllers share."""

from __future__ import annotations

from uuid import UUID

from service.auth.principal import Scope
from service.db import PooledConnection
from service.errors import conversation_not_found
from service.store import conversations


async def require_conversation(conn: PooledConnection, conversation_id: UUID, scope: Scope) -> None:
    """Tell "no such conversation" (404) from "nothing matched" when a query came back empty,
    or refuse early what needs the conversation."""
    if not await conversations.exists(conn, conversation_id=conversation_id, scope=scope):
        raise conversation_not_found(conversation_id)
