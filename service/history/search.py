"""Searching the messages a caller may see: ranked hits with snippets, keyset-paginated."""

from __future__ import annotations

import re
from datetime import datetime

from service.core import search as rules
from service.core.errors import InvalidInput
from service.core.filters import instant
from service.core.principal import Principal
from service.core.refs import parse_conversation_ref
from service.core.schemas import ROLE_PATTERN, SearchHit, SearchPage
from service.core.settings import Settings
from service.core.snippets import snippet
from service.core.validation import page_size, reject_nul
from service.db.pool import Connection
from service.history import conversations
from service.history.conversation_lists import whose
from service.store import conversation_lists, search

_ROLE = re.compile(ROLE_PATTERN)


def _role(role: str | None) -> str | None:
    if role is not None and not _ROLE.fullmatch(role):
        raise InvalidInput("not a role name (lowercase letters, digits, _ and -)", field="role")
    return role


def _time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    start, end = instant(since, "since"), instant(until, "until")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("until must be later than since", field="until")
    return start, end


async def find(
    conn: Connection,
    principal: Principal,
    *,
    q: str,
    user_id: str | None,
    conversation: str | None,
    role: str | None,
    topic: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    page_cursor: str | None,
    settings: Settings,
) -> SearchPage:
    """The messages matching ``q`` that the caller may see (a trusted caller: every one, or
    user ``user_id``'s; a user or visitor: its own), best first, after ``page_cursor``."""
    query = rules.checked_query(q)
    size = page_size(limit, settings)
    subject, value = whose(principal, user_id, None)
    reject_nul(topic, "topic")
    start, end = _time_range(since, until)
    after = rules.decode(page_cursor)
    scope = principal.scope()
    conversation_id = None
    if conversation is not None:
        ref = parse_conversation_ref(conversation, "conversation_id")
        conversation_id = await conversations.resolve(conn, ref, scope)
        await conversations.require(conn, conversation_id, scope)
    async with conn.transaction():
        # One statement serves every caller only when planned for its values (sql/search.sql).
        await conversation_lists.plan_for_these_values(conn)
        matches = await search.messages(
            conn,
            query=query,
            pattern=rules.like_pattern(query),
            scope=scope,
            user_id=value if subject == "user" and isinstance(value, str) else None,
            conversation_id=conversation_id,
            role=_role(role),
            topic=topic,
            since=start,
            until=end,
            after=after,
            limit=size + 1,
        )
    hits = [SearchHit(*match[:-1], snippet(match.excerpt, query)) for match in matches[:size]]
    next_cursor = None
    if len(matches) > size:
        last = hits[-1]
        next_cursor = rules.encode(
            rules.Position(last.rank, last.created_at, last.conversation_id, last.seq)
        )
    return SearchPage(items=hits, next_cursor=next_cursor)
