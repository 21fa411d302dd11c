"""Domain errors, and their one mapping to RFC 9457 problem details.

Handlers raise these; nothing else builds an error response. Every problem names the offending
``field`` when there is one.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from service.msgspec_errors import field_of

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"


class ChatkeepError(Exception):
    status = 400
    title = "Bad request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def response_headers(self) -> dict[str, str] | None:
        """Headers the problem response carries; an error that knows more overrides this."""
        return self.headers


class Unauthorized(ChatkeepError):
    """No usable credentials: none, malformed, expired, forged or revoked."""

    status = 401
    title = "Unauthorized"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="chatkeep"'}

    def __init__(self, detail: str, *, field: str = "Authorization") -> None:
        super().__init__(detail, field=field)


class Forbidden(ChatkeepError):
    """Known caller, not allowed to do this."""

    status = 403
    title = "Forbidden"


class NotFound(ChatkeepError):
    status = 404
    title = "Not found"


def conversation_not_found(conversation_id: object) -> NotFound:
    """Missing, or someone else's: the two look the same, so existence does not leak."""
    return NotFound(f"conversation {conversation_id} does not exist", field="conversation_id")


class RangeNotSatisfiable(ChatkeepError):
    """A download's Range selects no byte of the file."""

    status = 416
    title = "Range not satisfiable"

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail, field="Range")
        self.size = size

    def response_headers(self) -> dict[str, str]:
        # RFC 9110 15.5.17: say how long the file is.
        return {"Content-Range": f"bytes */{self.size}"}


class Conflict(ChatkeepError):
    status = 409
    title = "Conflict"


class TooLarge(ChatkeepError):
    status = 413
    title = "Content too large"


class InvalidInput(ChatkeepError):
    status = 422
    title = "Invalid input"


class Unavailable(ChatkeepError):
    status = 503
    title = "Service unavailable"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": RETRY_AFTER_SECONDS}


def problem(
    status: int,
    title: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemDetailsException:
    members = {"field": field} if field else {}
    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, extra=members or None, headers=headers
    )


def from_domain(exc: ChatkeepError) -> ProblemDetailsException:
    return problem(exc.status, exc.title, exc.detail, exc.field, exc.response_headers())


def from_validation(exc: ValidationException) -> ProblemDetailsException:
    """Litestar's parameter and body errors (422), naming the first offending field."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    first = errors[0] if errors else {}
    # Litestar names where the error is as "key" (the JSON path, the whole body being "data");
    # a missing field's own name is only in the message.
    text, missing = field_of(str(first.get("message", exc.detail)))
    key = first.get("key")
    where = None if key in (None, "data") else key
    if text == "'data'":  # Litestar's KeyError when there is no body at all
        text = "a JSON request body is required"
    if missing:
        return problem(422, "Invalid input", text, f"{where}.{missing}" if where else missing)
    return problem(422, "Invalid input", text, where or "body")


HTTP_TITLES = {
    400: "Malformed request body",
    404: "Not found",
    405: "Method not allowed",
    413: "Content too large",
}


def from_http(exc: HTTPException) -> ProblemDetailsException:
    """Framework errors (undecodable JSON, unknown route, body too large...) in the same shape."""
    status = exc.status_code
    field = "body" if status in (400, 413) else None
    return problem(status, HTTP_TITLES.get(status, "Error"), str(exc.detail), field)


def from_undecodable(exc: UnicodeDecodeError) -> ProblemDetailsException:
    """Bytes that are not UTF-8 where text was expected (a JSON body, most often)."""
    return problem(400, "Malformed request body", f"not valid UTF-8: {exc.reason}", "body")


def from_database(exc: Exception) -> ProblemDetailsException:
    """The database refused or is unreachable: never a 500 the client cannot act on."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return problem(409, "Conflict", "the id is already taken", exc.constraint_name)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError):
        return problem(422, "Invalid input", exc.args[0] if exc.args else str(exc))
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return from_domain(Unavailable("the database is unavailable; retry shortly"))


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Last resort: log the bug, answer with a problem document that leaks nothing."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal server error", "unexpected error").to_response(request)


# Errors that mean "PostgreSQL is not there or not answering in time".
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection left mid-reply by a server that went away (it is closed, not reused).
    asyncpg.InternalClientError,
)
DATABASE_ERRORS = (
    asyncpg.UniqueViolationError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    *UNAVAILABLE,
)
