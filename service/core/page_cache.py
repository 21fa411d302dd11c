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
# What an entry costs besides its body: key, tag, the dict's and tuple's bookkeeping. An
# estimate, so the bound holds for small pages too.
ENTRY_OVERHEAD = 400


class CachedPage(NamedTuple):
    etag: str
    body: bytes


class PageCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, CachedPage] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def cost(page: CachedPage) -> int:
        return len(page.body) + len(page.etag) + ENTRY_OVERHEAD

    def get(self, key: Hashable) -> CachedPage | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, page: CachedPage) -> None:
        """Keep ``page`` under ``key`` (replacing what was there), evicting the least recently
        used entries until the cache fits its bound; a page over 1/LARGEST_SHARE of the bound is
        not kept."""
        self.discard(key)
        cost = self.cost(page)
        if cost > self.max_bytes // LARGEST_SHARE:
            return
        self._entries[key] = page
        self.bytes += cost
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= self.cost(evicted)

    def discard(self, key: Hashable) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= self.cost(old)
