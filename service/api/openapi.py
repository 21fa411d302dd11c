"""The error responses every /v1 operation documents: RFC 9457 problem documents."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Struct, kw_only=True):
    status: int
    title: str
    detail: str
    # The request field at fault, as a JSON path (e.g. messages[3].content) or a header name.
    field: str | None = None


def problem_response(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem, description=description, media_type=PROBLEM_MEDIA_TYPE
    )


PROBLEM_RESPONSES = {
    400: problem_response("Malformed request (e.g. a body that is not JSON)"),
    401: problem_response("No usable credentials"),
    403: problem_response("Not allowed for these credentials"),
    404: problem_response("No such conversation or message (or not the caller's)"),
    409: problem_response("Conflicts with what is stored"),
    413: problem_response("Over a configured size limit"),
    422: problem_response("Invalid input; `field` names it"),
    503: problem_response("Database unavailable or busy; retry after Retry-After seconds"),
}
