"""The one mapping from errors to RFC 9457 problem details (application/problem+json).

Domain errors (service/core/errors.py) say what went wrong; this says how HTTP tells it: the
status, the title and the headers that go with it. Every problem names the offending ``field``
when there is one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from service.core import errors, metrics
from service.core.msgspec_errors import field_of
from service.db.errors import DATABASE_ERRORS, ROLLED_BACK

log = logging.getLogger(__name__)

# Litestar names a missing query (or header, path) parameter only in its message.
MISSING_PARAMETER = re.compile(r"^Missing required \w+ parameter '(?P<name>[^']+)'")
RETRY_AFTER_SECONDS = "1"


class HeadersTooLarge(errors.ChatkeepError):
    """More request header fields, or bytes of them, than the service reads."""


# Status and title of each error class; a subclass not listed takes its nearest base's.
STATUS: dict[type[errors.ChatkeepError], tuple[int, str]] = {
    errors.ChatkeepError: (400, "Bad request"),
    errors.Unauthorized: (401, "Unauthorized"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NotFound: (404, "Not found"),
    errors.Conflict: (409, "Conflict"),
    errors.PreconditionFailed: (412, "Precondition failed"),
    errors.TooLarge: (413, "Content too large"),
    # 413 for both quotas (conversations and bytes): waiting does not help, unlike a 429.
    errors.QuotaExceeded: (413, "Quota exceeded"),
    errors.RateLimited: (429, "Too many requests"),
    errors.TimedOut: (408, "Request timeout"),
    errors.RangeNotSatisfiable: (416, "Range not satisfiable"),
    errors.InvalidInput: (422, "Invalid input"),
    HeadersTooLarge: (431, "Request header fields too large"),
    errors.Unavailable: (503, "Service unavailable"),
}


def _range_headers(exc: errors.ChatkeepError) -> dict[str, str]:
    # RFC 9110 15.5.17: say how long the file is.
    assert isinstance(exc, errors.RangeNotSatisfiable)
    return {"Content-Range": f"bytes */{exc.size}"}


def _retry_headers(exc: errors.ChatkeepError) -> dict[str, str]:
    assert isinstance(exc, errors.RateLimited)
    return {"Retry-After": str(exc.retry_after)}


# Headers a problem of that class carries.
HEADERS: dict[type[errors.ChatkeepError], Callable[[errors.ChatkeepError], dict[str, str]]] = {
    errors.Unauthorized: lambda _: {"WWW-Authenticate": 'Bearer realm="chatkeep"'},
    errors.Unavailable: lambda _: {"Retry-After": RETRY_AFTER_SECONDS},
    errors.RangeNotSatisfiable: _range_headers,
    errors.RateLimited: _retry_headers,
}


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


def from_domain(exc: errors.ChatkeepError) -> ProblemDetailsException:
    kind = next(cls for cls in type(exc).__mro__ if cls in STATUS)
    status, title = STATUS[kind]
    headers = next((HEADERS[cls](exc) for cls in type(exc).__mro__ if cls in HEADERS), None)
    return problem(status, title, exc.detail, exc.field, headers)


def from_validation(exc: ValidationException) -> ProblemDetailsException:
    """Litestar's parameter and body errors (422), naming the first offending field."""
    found = exc.extra if isinstance(exc.extra, list) else []
    first = found[0] if found else {}
    # Litestar names where the error is as "key" (the JSON path, the whole body being "data");
    # a missing field's own name is only in the message.
    text, missing = field_of(str(first.get("message", exc.detail)))
    key = first.get("key")
    where = None if key in (None, "data") else key
    if parameter := MISSING_PARAMETER.match(text):
        return problem(422, "Invalid input", text, parameter["name"])
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
    # Keeps the framework's headers, such as a 405's Allow (RFC 9110 15.5.6).
    return problem(status, HTTP_TITLES.get(status, "Error"), str(exc.detail), field, exc.headers)


def from_undecodable(exc: UnicodeDecodeError) -> ProblemDetailsException:
    """Bytes that are not UTF-8 where text was expected (a JSON body, most often)."""
    return problem(400, "Malformed request body", f"not valid UTF-8: {exc.reason}", "body")


def from_recursion(exc: RecursionError) -> ProblemDetailsException:
    """JSON nested deeper than the decoder follows (nothing else in the service recurses
    without a bound)."""
    return problem(400, "Malformed request body", "JSON nested too deeply", "body")


def from_database(exc: Exception) -> ProblemDetailsException:
    """The database refused or is unreachable: never a 500 the client cannot act on."""
    metrics.DB_ERRORS.labels(type(exc).__name__).inc()
    if isinstance(exc, asyncpg.UniqueViolationError):
        return problem(409, "Conflict", "the id is already taken", exc.constraint_name)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError):
        return problem(422, "Invalid input", exc.args[0] if exc.args else str(exc))
    if isinstance(exc, ROLLED_BACK):
        log.warning("transaction rolled back: %s", exc)
        return from_domain(errors.Unavailable("concurrent writes collided; retry shortly"))
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return from_domain(errors.Unavailable("the database is unavailable; retry shortly"))


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Last resort: log the bug, answer with a problem document that leaks nothing."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal server error", "unexpected error").to_response(request)


def exception_map() -> dict[type[Exception], Callable[[Any], ProblemDetailsException]]:
    """What the problem-details plugin maps, and how."""
    return {
        errors.ChatkeepError: from_domain,
        ValidationException: from_validation,
        HTTPException: from_http,
        **{error: from_database for error in DATABASE_ERRORS},
        UnicodeDecodeError: from_undecodable,
        RecursionError: from_recursion,
    }
