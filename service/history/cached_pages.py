"""Plain history pages as the bytes a response carries, with their ETag, cached per worker.

A read names what it would show by the conversation's revision (service/core/revisions.py).
With an If-None-Match, or an entry cached for the same conversation and query, one
primary-key probe reads the current revision first: a tag the caller has is a 304, an entry
at that revision is served as it is, and only otherwise is the page read and encoded. Without
either, the page is read directly (its query reads the revision in the same snapshot), so a
read that cannot be answered from the cache costs no more than before. Every answer reflects
the revision the request's connection sees: a write acknowledged on any worker has bumped it.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from service.core.errors import conversation_not_found
from service.core.page_cache import CachedPage, PageCache
from service.core.principal import Principal
from service.core.refs import ConversationRef
from service.core.revisions import PageQuery, matches_any, page_etag
from service.db.pool import Connection
from service.history import messages
from service.history.conversations import resolve
from service.store import conversations


class EncodedPage(NamedTuple):
    etag: str
    # None: the caller's If-None-Match names the current page (a 304).
    body: bytes | None


async def read(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    query: PageQuery,
    *,
    cache: PageCache,
    if_none_match: frozenset[str] | None,
) -> EncodedPage:
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    cached = cache.get(conversation_id, query) if cache.max_bytes else None
    if cached is not None or if_none_match is not None:
        revision = await conversations.revision(conn, conversation_id=conversation_id, scope=scope)
        if revision is None:
            raise conversation_not_found(conversation_id)
        etag = page_etag(revision, query)
        if if_none_match is not None and matches_any(if_none_match, etag):
            return EncodedPage(etag, None)
        if cached is not None and cached.etag == etag:
            return EncodedPage(etag, cached.body)
    page, revision = await messages.page(conn, scope, conversation_id, query)
    encoded = CachedPage(page_etag(revision, query), msgspec.json.encode(page))
    if cache.max_bytes:
        cache.put(conversation_id, query, encoded)
    return EncodedPage(*encoded)
