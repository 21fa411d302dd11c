"""Errors: one class per kind of problem the service reports (RFC 9457 problem+json), so an
application catches what it can act on (``except NotFound``) and reads which input was at
fault (``field``)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import msgspec


class ChatkeepError(Exception):
    """The service refused the request, or could not be reached (``status`` None)."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if status else detail)
        self.status = status
        self.title = title
        self.detail = detail
        # The input at fault, as the service names it (``messages[3].content``, ``If-Match``).
        self.field = field


class ConnectionFailed(ChatkeepError):
    """No answer from the service (connection refused or dropped, timeout), retries spent."""


class BadRequest(ChatkeepError):
    """400: the request could not be read (malformed JSON, say)."""


class Unauthorized(ChatkeepError):
    """401: no credentials, or unknown, expired, revoked or forged ones."""


class Forbidden(ChatkeepError):
    """403: known caller, not allowed to do this."""


class NotFound(ChatkeepError):
    """404: no such thing, or someone else's (the two look the same)."""


class RequestTimeout(ChatkeepError):
    """408: the request's body did not arrive in time."""


class Conflict(ChatkeepError):
    """409: contradicts what is stored (an id taken by other content)."""


class PreconditionFailed(ChatkeepError):
    """412: ``if_match`` named a version the conversation is no longer at: read it again."""


class TooLarge(ChatkeepError):
    """413: over a size limit."""


class QuotaExceeded(TooLarge):
    """413: the write would take its user or visitor past a quota."""


class RangeNotSatisfiable(ChatkeepError):
    """416: the byte range selects nothing of the file."""


class InvalidInput(ChatkeepError):
    """422: well-formed input that cannot be accepted; ``field`` names it."""


class ServerError(ChatkeepError):
    """5xx: the service failed."""


class _RetryLater:
    """Errors telling the caller to come back after ``retry_after`` seconds."""

    retry_after: float | None


class RateLimited(ChatkeepError, _RetryLater):
    """429: too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class Unavailable(ServerError, _RetryLater):
    """503: the database is unreachable or busy; ``retry_after`` seconds is worth waiting."""

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


BY_STATUS: dict[int, type[ChatkeepError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: RequestTimeout,
    409: Conflict,
    412: PreconditionFailed,
    413: TooLarge,
    416: RangeNotSatisfiable,
    422: InvalidInput,
    429: RateLimited,
    503: Unavailable,
}
QUOTA_TITLE = "Quota exceeded"


class _Problem(msgspec.Struct):
    title: str | None = None
    detail: str | None = None
    field: str | None = None


def retry_after(response: httpx.Response) -> float | None:
    """The response's Retry-After in seconds from now (delay-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def from_response(response: httpx.Response) -> ChatkeepError:
    """The error an error response stands for; its body must have been read."""
    status = response.status_code
    try:
        problem = msgspec.json.decode(response.content, type=_Problem)
    except (msgspec.DecodeError, msgspec.ValidationError):
        # Not the service's problem document (a proxy's error page, say).
        problem = _Problem(detail=response.text[:500] or response.reason_phrase)
    kind = BY_STATUS.get(status, ServerError if status >= 500 else ChatkeepError)
    if kind is TooLarge and problem.title == QUOTA_TITLE:
        kind = QuotaExceeded
    fields: dict[str, Any] = {
        "status": status,
        "title": problem.title or response.reason_phrase,
        "field": problem.field,
    }
    if issubclass(kind, _RetryLater):
        fields["retry_after"] = retry_after(response)
    detail = problem.detail or response.reason_phrase
    return kind(detail, **fields)
