"""Domain errors: what went wrong, in the service's terms, and which input ``field`` is at fault.

Every layer raises these; only the HTTP layer turns them into RFC 9457 problem documents (status,
title and headers are chosen in service/api/problems.py), and the CLI into messages. Nothing here
knows HTTP or the web framework.
"""

from __future__ import annotations


class ChatkeepError(Exception):
    """The request cannot be carried out as asked."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class Unauthorized(ChatkeepError):
    """No usable credentials: none, malformed, expired, forged or revoked."""

    def __init__(self, detail: str, *, field: str = "Authorization") -> None:
        super().__init__(detail, field=field)


class Forbidden(ChatkeepError):
    """Known caller, not allowed to do this."""


class NotFound(ChatkeepError):
    """No such thing, or not the caller's to see: the two look the same."""


def conversation_not_found(conversation_id: object) -> NotFound:
    """Missing, or someone else's: the two look the same, so existence does not leak."""
    return NotFound(f"conversation {conversation_id} does not exist", field="conversation_id")


class RangeNotSatisfiable(ChatkeepError):
    """A download's byte range selects no byte of the file."""

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail, field="Range")
        self.size = size


class Conflict(ChatkeepError):
    """Contradicts what is stored (an id taken by other content)."""


class PreconditionFailed(ChatkeepError):
    """A conditional write (If-Match) found the conversation at another version."""

    def __init__(self, detail: str, *, field: str = "If-Match") -> None:
        super().__init__(detail, field=field)


class TooLarge(ChatkeepError):
    """Over a configured size limit."""


class QuotaExceeded(TooLarge):
    """The write would take a user or a visitor past what it may own (its quota)."""


class RateLimited(ChatkeepError):
    """Too many requests, or failed authentications, in too short a time."""

    def __init__(self, detail: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        # Whole seconds until a retry can succeed.
        self.retry_after = retry_after


class InvalidInput(ChatkeepError):
    """Input that is well-formed but cannot be accepted."""


class TimedOut(ChatkeepError):
    """The client did not send its request in the time allowed."""


class Unavailable(ChatkeepError):
    """The database is unreachable or busy: worth retrying shortly."""
