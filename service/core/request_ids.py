"""Request ids: which ``X-Request-ID`` a caller may choose, and the one the service makes up.

A caller's (or its proxy's) id is kept when it is 1 to 128 characters of ``A-Z a-z 0-9 . _ -``:
enough for a UUID, a ULID or a proxy's trace id, and nothing that could forge a second log line
or field (no spaces, quotes, control characters). Anything else is replaced by a new id."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
RULE = "1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._-]{1,128}")

# The id of the request this task serves ("-" outside requests): log lines carry it, and tasks
# a request starts inherit it with the rest of their context.
current: ContextVar[str] = ContextVar("request_id", default="-")


def chosen(value: bytes | None) -> str | None:
    """The caller's id when it is well-formed, else None."""
    if value is None or not _WELL_FORMED.fullmatch(value):
        return None
    return value.decode("ascii")


def new() -> str:
    return uuid.uuid4().hex
