"""The fake's errors, answered as the service answers them: RFC 9457 problem+json with the
same status, title and ``field``."""

from __future__ import annotations

import httpx
import msgspec

TITLES = {
    400: "Malformed request body",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    416: "Range not satisfiable",
    422: "Invalid input",
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}

    def response(self) -> httpx.Response:
        body: dict[str, object] = {
            "type": "about:blank",
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
        }
        if self.field:
            body["field"] = self.field
        return httpx.Response(
            self.status,
            content=msgspec.json.encode(body),
            headers={"Content-Type": "application/problem+json", **self.headers},
        )


def not_found(what: str, name: object, field: str) -> Problem:
    return Problem(404, f"{what} {name} does not exist", field=field)


def conversation_not_found(name: object) -> Problem:
    return not_found("conversation", name, "conversation_id")


def unauthorized(detail: str, field: str = "Authorization") -> Problem:
    return Problem(
        401, detail, field=field, headers={"WWW-Authenticate": 'Bearer realm="chatkeep"'}
    )


def invalid(detail: str, field: str) -> Problem:
    return Problem(422, detail, field=field)
