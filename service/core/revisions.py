"""What a history page shows, named: the conversation's revision (version and creation time)
and the page's query. Its ETag is derived from both, so any write to the conversation or its
messages (each bumps the version) changes it, and so does deleting the conversation and
creating it again under the same id (the version restarts; the creation time does not)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class Revision(NamedTuple):
    version: int
    created_at: datetime


class PageQuery(NamedTuple):
    """A plain page's query, normalised: ``size`` is the page size after the default applied,
    ``max_bytes`` the byte budget of the serving worker (both shape the page)."""

    size: int
    before: int | None
    after: int | None
    order: str
    topic: str | None
    max_bytes: int


def page_etag(revision: Revision, query: PageQuery) -> str:
    """A weak ETag (it never matches If-Match, which names a conversation's version)."""
    created = (revision.created_at - EPOCH) // MICROSECOND
    digest = hashlib.blake2b(repr(tuple(query)).encode(), digest_size=8).hexdigest()
    return f'W/"{revision.version}.{created:x}.{digest}"'


def opaque(tag: str) -> str:
    """An entity tag without its weakness: If-None-Match compares weakly (RFC 9110 13.1.2)."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def matches_any(tags: frozenset[str], etag: str) -> bool:
    """Whether an If-None-Match's ``tags`` (opaque, or "*") name ``etag``."""
    return "*" in tags or opaque(etag) in tags
