"""A worker's cache of encoded history pages, least recently used first out, bounded by bytes.

Entries are only served after the conversation's current revision was read and found to be
the one the entry was encoded at (service/history/cached_pages.py): the cache saves reading
and encoding a page, never the check that it is still current.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

# A page over this share of the bound is not kept: the cache is for the many small pages that
# are read again, which a few large ones (up to CHATKEEP_MAX_PAGE_BYTES each) would push out,
# and a worker holding large pages both cached and in flight outgrows its memory aim.
LARGEST_SHARE = 16
# What an entry costs besides its body: key, tag, the dict's and tuple's bookkeeping, its place
# in its conversation's index. An estimate, so the bound holds for small pages too.
ENTRY_OVERHEAD = 600


class CachedPage(NamedTuple):
    etag: str
    body: bytes


class PageCache:
    """Entries are keyed by (conversation, query), so that a worker that writes to a
    conversation can drop all of its pages at once: the next read of one then reads the page at
    once, instead of first probing a revision that is certain to have moved."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[Hashable, Hashable], CachedPage] = OrderedDict()
        # Each conversation's cached queries.
        self._queries: dict[Hashable, set[Hashable]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def cost(page: CachedPage) -> int:
        return len(page.body) + len(page.etag) + ENTRY_OVERHEAD

    def get(self, conversation: Hashable, query: Hashable) -> CachedPage | None:
        key = (conversation, query)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, conversation: Hashable, query: Hashable, page: CachedPage) -> None:
        """Keep ``page`` for ``query`` of ``conversation`` (replacing what was there), evicting
        the least recently used entries until the cache fits its bound; a page over
        1/LARGEST_SHARE of the bound is not kept."""
        self.discard(conversation, query)
        cost = self.cost(page)
        if cost > self.max_bytes // LARGEST_SHARE:
            return
        self._entries[(conversation, query)] = page
        self._queries.setdefault(conversation, set()).add(query)
        self.bytes += cost
        while self.bytes > self.max_bytes:
            oldest_conversation, oldest_query = next(iter(self._entries))
            self.discard(oldest_conversation, oldest_query)

    def discard(self, conversation: Hashable, query: Hashable) -> None:
        old = self._entries.pop((conversation, query), None)
        if old is not None:
            self.bytes -= self.cost(old)
            queries = self._queries[conversation]
            queries.discard(query)
            if not queries:
                del self._queries[conversation]

    def forget(self, conversation: Hashable) -> None:
        """Drop every page of ``conversation`` (this worker has just written to it)."""
        for query in list(self._queries.get(conversation, ())):
            self.discard(conversation, query)
