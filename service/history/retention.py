"""Retention: the prune deletes the conversations whose time is up, with their messages and
files (the files' bytes are released by the triggers of migrations/0004.files.sql):

- anonymous visitors' conversations not written to for settings.visitor_retention_days days
  (0: kept); a read does not count, a claimed conversation is a user's and stays;
- conversations whose ``expires_at`` has passed.

It deletes in the bulk delete's batches (conversation_lists.erase_in_batches). `chatkeep prune`
runs it, and so does every server worker in the background (service/api/pruning.py); an
advisory lock lets one of them at a time do it, across instances.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.core.schemas import ConversationsErased
from service.core.settings import Settings
from service.db.pool import Connection
from service.history.conversation_lists import erase_in_batches
from service.store import retention


def _idle_before(settings: Settings, now: datetime) -> datetime | None:
    """Visitors' conversations last written before this are pruned; None: visitors' are kept."""
    if settings.visitor_retention_days == 0:
        return None
    return now - timedelta(days=settings.visitor_retention_days)


async def prune(
    conn: Connection, settings: Settings, *, dry_run: bool = False
) -> ConversationsErased:
    """Delete what retention says is due (with ``dry_run``, only count it); what went."""
    now = datetime.now(UTC)
    idle_before = _idle_before(settings, now)
    if dry_run:
        return await retention.prunable(conn, idle_before=idle_before, expired_at=now)
    batch = settings.bulk_delete_batch
    totals = await erase_in_batches(conn, caller_trusted=True, batch_size=batch, expired_at=now)
    if idle_before is not None:
        idle = await erase_in_batches(
            conn,
            caller_trusted=True,
            batch_size=batch,
            visitors_only=True,
            updated_before=idle_before,
        )
        totals.conversations += idle.conversations
        totals.messages += idle.messages
        totals.files += idle.files
    return totals


async def prune_unless_running(conn: Connection, settings: Settings) -> ConversationsErased | None:
    """Prune, unless another session (a worker of any instance, or the CLI) is pruning: None
    then. The lock is this connection's until the prune ends."""
    if not await retention.try_lock(conn):
        return None
    try:
        return await prune(conn, settings)
    finally:
        await retention.unlock(conn)
