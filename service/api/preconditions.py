"""ETag and If-Match as HTTP spells them: a conversation's ETag is its version, quoted."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response

from service.core.errors import InvalidInput
from service.core.preconditions import Precondition
from service.core.revisions import opaque

# One strong entity tag of ours: a quoted version number. Weak tags never match an If-Match
# (RFC 9110 13.1.1 compares strongly), so they are refused rather than ignored.
_TAG = re.compile(r'\s*"([1-9][0-9]{0,18})"\s*')
MAX_TAGS = 32


def etag(version: int) -> str:
    return f'"{version}"'


def if_none_match(request: Request[Any, Any, Any]) -> frozenset[str] | None:
    """The request's If-None-Match as opaque tags (weakness dropped: it compares weakly), "*"
    kept as it is; None when it has none. A tag the service never sent just never matches."""
    value = request.headers.get("if-none-match")
    if value is None:
        return None
    return frozenset(opaque(tag) for tag in value.split(",")[:MAX_TAGS] if tag.strip())


def not_modified(etag: str) -> Response[Any]:
    """A 304: the caller's If-None-Match names what it would get (no body, just the tag)."""
    return Response(b"", status_code=304, headers={"ETag": etag})


def if_match(request: Request[Any, Any, Any]) -> Precondition | None:
    """The request's If-Match, or None when it has none; a malformed one is InvalidInput."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    if value.strip() == "*":
        return Precondition(None)
    tags = value.split(",")
    matches = [_TAG.fullmatch(tag) for tag in tags]
    if len(tags) > MAX_TAGS or not all(matches):
        raise InvalidInput(
            'If-Match must be "*" or a list of ETags this service sent, such as "3"',
            field="If-Match",
        )
    return Precondition(frozenset(int(match[1]) for match in matches if match))
