"""A search hit's snippet: an excerpt of the message with its matches marked, safe to put into
HTML as it is.

The excerpt comes from sql/search.sql: ts_headline's fragment, its matched words between the
private-use characters U+E000 and U+E001 (removed from the content before, so they can only be
markers), or a window around the query's literal occurrence. Here every literal occurrence of
the query is marked too, the text is HTML-escaped (& < > " ' become entities), and each match
is wrapped in <mark>...</mark>: as every < of the message is escaped, those are the only tags.
"""

from __future__ import annotations

import html
import re

MATCH_START = "\ue000"
MATCH_END = "\ue001"
OPEN = "<mark>"
CLOSE = "</mark>"
_MARKER = re.compile(f"([{MATCH_START}{MATCH_END}])")

Span = tuple[int, int]


def _unmark(excerpt: str) -> tuple[str, list[Span]]:
    """The excerpt without its markers, and the spans they enclosed."""
    text: list[str] = []
    spans: list[Span] = []
    length = 0
    opened: int | None = None
    for part in _MARKER.split(excerpt):
        if part == MATCH_START:
            opened = length
        elif part == MATCH_END:
            if opened is not None and length > opened:
                spans.append((opened, length))
            opened = None
        else:
            text.append(part)
            length += len(part)
    return "".join(text), spans


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(excerpt: str, query: str) -> str:
    """HTML-safe text with <mark> around the matches of ``query`` in ``excerpt``."""
    text, spans = _unmark(excerpt)
    if query:
        spans += [found.span() for found in re.finditer(re.escape(query), text, re.IGNORECASE)]
    parts: list[str] = []
    done = 0
    for start, end in _merged(spans):
        parts += [html.escape(text[done:start]), OPEN, html.escape(text[start:end]), CLOSE]
        done = end
    parts.append(html.escape(text[done:]))
    return "".join(parts)
