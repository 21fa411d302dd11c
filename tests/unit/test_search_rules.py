"""The search's pure rules: snippets safe for HTML, the literal match's LIKE pattern, the query's
checks and the ranked cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from service.core import cursor, search
from service.core.errors import InvalidInput
from service.core.snippets import MATCH_END, MATCH_START, snippet


def test_a_snippet_escapes_the_text_and_marks_the_literal_matches() -> None:
    assert snippet("<b>Tom & Jerry's</b> jerry", "jerry") == (
        "&lt;b&gt;Tom &amp; <mark>Jerry</mark>&#x27;s&lt;/b&gt; <mark>jerry</mark>"
    )
    assert snippet("a < b", "") == "a &lt; b"
    assert snippet("nothing here", "absent") == "nothing here"


def test_a_snippet_turns_headline_markers_into_marks_and_merges_overlaps() -> None:
    excerpt = f"the {MATCH_START}invoices{MATCH_END} and {MATCH_START}payment{MATCH_END}s"
    assert snippet(excerpt, "invoice") == "the <mark>invoices</mark> and <mark>payment</mark>s"
    # A marker left open, or an empty pair, marks nothing.
    assert snippet(f"a {MATCH_START}{MATCH_END}b {MATCH_START}c", "zzz") == "a b c"


def test_the_like_pattern_takes_wildcards_literally() -> None:
    assert search.like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"
    assert search.like_pattern("請求書") == "%請求書%"


@pytest.mark.parametrize("q", ["", "   ", "x" * (search.MAX_QUERY_CHARS + 1), "a\x00"])
def test_a_query_is_refused_naming_q(q: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        search.checked_query(q)
    assert refused.value.field == "q"


def test_a_query_is_trimmed() -> None:
    assert search.checked_query("  E1234 ") == "E1234"


def test_a_cursor_keeps_its_position_exactly_and_refuses_a_listings() -> None:
    position = search.Position(1.0607927143573761, datetime(2026, 1, 2, tzinfo=UTC), uuid4(), 7)
    assert search.decode(search.encode(position)) == position
    assert search.decode(None) == search.START
    for token in ("x", cursor.encode(*cursor.START)):
        with pytest.raises(InvalidInput) as refused:
            search.decode(token)
        assert refused.value.field == "cursor"
    # And a listing refuses a search's.
    with pytest.raises(InvalidInput):
        cursor.decode(search.encode(position))
