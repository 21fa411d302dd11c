"""Finding conversations: listings newest updated or newest created first, filtered by owner and
metadata, their counts, and bulk deletes in batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.core import cursor
from service.core.errors import Forbidden, InvalidInput
from service.core.filters import SORTS, Sort, instant, metadata_filter
from service.core.principal import Permission, Principal
from service.core.schemas import ConversationCount, ConversationPage, ConversationsErased
from service.core.settings import Settings
from service.core.validation import page_size, reject_nul
from service.db.pool import Connection
from service.store import conversation_lists
from service.store.conversation_lists import Subject

# The confirm parameter's value that lets a bulk delete without filters delete everything.
CONFIRM_ALL = "all"


def whose(
    principal: Principal, user_id: str | None, metadata: dict[str, Any] | None
) -> tuple[Subject, bool | str | bytes]:
    """Whose conversations a caller finds: a trusted caller chooses, others see their own."""
    reject_nul(user_id, "user_id")
    if principal.trusted:
        if user_id is not None:
            return "user", user_id
        return ("all", True) if metadata is None else ("matching", True)
    if principal.user_id is not None and user_id in (None, principal.user_id):
        return "user", principal.user_id
    if principal.visitor_hash is not None and user_id is None:
        return "visitor", principal.visitor_hash
    raise Forbidden("only your own conversations can be listed", field="user_id")


def _sort(sort: str) -> Sort:
    for known in SORTS:
        if sort == known:
            return known
    raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")


async def list_page(
    conn: Connection,
    principal: Principal,
    *,
    user_id: str | None,
    metadata: str | None,
    sort: str,
    limit: int | None,
    page_cursor: str | None,
    settings: Settings,
) -> ConversationPage:
    """Newest first by ``sort`` (updated_at or created_at), from ``page_cursor`` (a previous
    page's next_cursor, of the same sort) on; only conversations whose metadata contains the
    ``metadata`` filter (a JSON object), when given."""
    size = page_size(limit, settings)
    order = _sort(sort)
    wanted = metadata_filter(metadata, settings)
    subject, value = whose(principal, user_id, wanted)
    after_at, after_id = cursor.decode(page_cursor, order=order)
    rows = await conversation_lists.page(
        conn,
        subject=subject,
        value=value,
        metadata=wanted,
        sort=order,
        after_at=after_at,
        after_id=after_id,
        limit=size + 1,
    )
    items = rows[:size]
    next_cursor = None
    if len(rows) > size:
        last = items[-1]
        at = last.updated_at if order == "updated_at" else last.created_at
        next_cursor = cursor.encode(at, last.id, order)
    return ConversationPage(items=items, next_cursor=next_cursor)


async def count(
    conn: Connection,
    principal: Principal,
    *,
    user_id: str | None,
    metadata: str | None,
    settings: Settings,
) -> ConversationCount:
    """How many conversations the listing with these filters holds, without paging it."""
    wanted = metadata_filter(metadata, settings)
    subject, value = whose(principal, user_id, wanted)
    n = await conversation_lists.count(conn, subject=subject, value=value, metadata=wanted)
    return ConversationCount(count=n)


async def erase(
    conn: Connection,
    principal: Principal,
    *,
    user_id: str | None,
    metadata: str | None,
    updated_before: str | None,
    confirm: str | None,
    settings: Settings,
) -> ConversationsErased:
    """Delete every conversation matching all the filters given (with their messages and
    files), in batches of settings.bulk_delete_batch (erase_in_batches). Without any filter it
    deletes everything, so it wants ``confirm="all"``. Only for an API key with the erase
    permission."""
    if not principal.trusted or Permission.ERASE not in principal.permissions:
        raise Forbidden(
            "deleting conversations in bulk needs an API key with the erase permission",
            field="Authorization",
        )
    reject_nul(user_id, "user_id")
    wanted = metadata_filter(metadata, settings)
    cutoff = instant(updated_before, "updated_before")
    if user_id is None and wanted is None and cutoff is None and confirm != CONFIRM_ALL:
        raise InvalidInput(
            "without a filter (user_id, metadata, updated_before) this deletes every "
            f"conversation: pass confirm={CONFIRM_ALL} to mean it",
            field="confirm",
        )
    return await erase_in_batches(
        conn,
        caller_trusted=principal.trusted,
        user_id=user_id,
        metadata=wanted,
        updated_before=cutoff,
        batch_size=settings.bulk_delete_batch,
    )


async def erase_in_batches(
    conn: Connection,
    *,
    caller_trusted: bool,
    batch_size: int,
    user_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    updated_before: datetime | None = None,
    visitors_only: bool = False,
    expired_at: datetime | None = None,
) -> ConversationsErased:
    """Delete the conversations matching every filter given (store.conversation_lists.
    erase_batch), ``batch_size`` per statement, each batch its own short transaction: a large
    set neither runs into the statement timeout nor holds locks long. A failure leaves the
    batches before it deleted; running it again finishes the job. The bulk delete and the prune
    (service/history/retention.py) both delete this way."""
    totals = ConversationsErased(conversations=0, messages=0, files=0)
    after_at, after_id = cursor.START_ASCENDING
    while True:
        async with conn.transaction():
            await conversation_lists.plan_for_these_values(conn)
            batch = await conversation_lists.erase_batch(
                conn,
                caller_trusted=caller_trusted,
                user_id=user_id,
                metadata=metadata,
                updated_before=updated_before,
                visitors_only=visitors_only,
                expired_at=expired_at,
                after_at=after_at,
                after_id=after_id,
                limit=batch_size,
            )
        totals.conversations += batch.conversations
        totals.messages += batch.messages
        totals.files += batch.files
        if batch.walked < batch_size or batch.last_at is None:
            return totals
        assert batch.last_id is not None  # set with last_at
        after_at, after_id = batch.last_at, batch.last_id
