"""The page cache's bound: bytes, least recently used out first."""

from __future__ import annotations

from datetime import UTC, datetime

from service.core.page_cache import ENTRY_OVERHEAD, LARGEST_SHARE, CachedPage, PageCache
from service.core.revisions import PageQuery, Revision, matches_any, page_etag

QUERY = PageQuery(50, None, None, "asc", None, 4 << 20)


def page(size: int, tag: str = 'W/"1"') -> CachedPage:
    return CachedPage(tag, b"x" * size)


def test_the_cache_stays_within_its_bytes_evicting_the_least_recently_used() -> None:
    one = PageCache.cost(page(1000))
    cache = PageCache(LARGEST_SHARE * one)
    for key in range(LARGEST_SHARE):
        cache.put(key, QUERY, page(1000))
    assert cache.get(0, QUERY) is not None  # now 1 is the least recently used
    cache.put("new", QUERY, page(1000))
    assert cache.get(1, QUERY) is None
    assert cache.get(0, QUERY) is not None
    assert cache.get("new", QUERY) is not None
    assert cache.bytes == LARGEST_SHARE * one <= cache.max_bytes


def test_replacing_an_entry_counts_it_once() -> None:
    cache = PageCache(LARGEST_SHARE * 10_000)
    cache.put("a", QUERY, page(1000))
    cache.put("a", QUERY, page(2000))
    assert len(cache) == 1
    assert cache.bytes == 2000 + len('W/"1"') + ENTRY_OVERHEAD


def test_a_page_over_its_share_of_the_bound_is_not_kept_and_evicts_nothing() -> None:
    cache = PageCache(LARGEST_SHARE * 5000)
    cache.put("a", QUERY, page(1000))
    cache.put("large", QUERY, page(5000))
    assert cache.get("large", QUERY) is None
    assert cache.get("a", QUERY) is not None


def test_many_small_pages_cannot_pass_the_bound() -> None:
    cache = PageCache(100_000)
    for n in range(10_000):
        cache.put(n, QUERY, page(10))
    assert cache.bytes <= 100_000
    assert len(cache) == 100_000 // PageCache.cost(page(10))


def test_forgetting_a_conversation_drops_all_its_pages_and_only_its() -> None:
    cache = PageCache(LARGEST_SHARE * 10_000)
    other_query = QUERY._replace(size=10)
    cache.put("a", QUERY, page(1000))
    cache.put("a", other_query, page(1000))
    cache.put("b", QUERY, page(1000))
    cache.forget("a")
    cache.forget("never cached")
    assert cache.get("a", QUERY) is None
    assert cache.get("a", other_query) is None
    assert cache.get("b", QUERY) is not None
    assert len(cache) == 1
    assert cache.bytes == PageCache.cost(page(1000))


def _index_is_true(cache: PageCache) -> bool:
    """Each conversation's queries in the index are exactly its cached entries."""
    indexed = {(c, q) for c, queries in cache._queries.items() for q in queries}
    return indexed == set(cache._entries) and all(cache._queries.values())


def test_eviction_and_replacement_keep_the_per_conversation_index_true() -> None:
    cache = PageCache(LARGEST_SHARE * PageCache.cost(page(1000)))
    for n in range(3 * LARGEST_SHARE):
        cache.put(n % 3, QUERY._replace(size=n % (LARGEST_SHARE + 2)), page(1000))
        assert _index_is_true(cache)
    cache.put(0, QUERY, page(LARGEST_SHARE * 2000))  # too large: not kept
    assert _index_is_true(cache)
    for conversation in range(3):
        cache.forget(conversation)
        assert _index_is_true(cache)
    assert len(cache) == 0
    assert cache.bytes == 0


def test_page_etags_change_with_version_incarnation_and_query() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    tag = page_etag(Revision(3, created), QUERY)
    assert tag.startswith('W/"')
    assert page_etag(Revision(3, created), QUERY) == tag
    assert page_etag(Revision(4, created), QUERY) != tag
    assert page_etag(Revision(3, datetime(2026, 1, 2, tzinfo=UTC)), QUERY) != tag
    assert page_etag(Revision(3, created), QUERY._replace(before=10)) != tag
    assert page_etag(Revision(3, created), QUERY._replace(order="desc")) != tag


def test_if_none_match_compares_weakly() -> None:
    assert matches_any(frozenset({'"1.a.b"'}), 'W/"1.a.b"')
    assert matches_any(frozenset({"*"}), 'W/"1.a.b"')
    assert not matches_any(frozenset({'"1.a.c"'}), 'W/"1.a.b"')
