"""ETag and If-Match as HTTP spells them: a conversation's ETag is its version, quoted."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from service.core.errors import InvalidInput
from service.core.preconditions import Precondition

# One strong entity tag of ours: a quoted version number. Weak tags never match an If-Match
# (RFC 9110 13.1.1 compares strongly), so they are refused rather than ignored.
_TAG = re.compile(r'\s*"([1-9][0-9]{0,18})"\s*')
MAX_TAGS = 32


def etag(version: int) -> str:
    return f'"{version}"'


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
