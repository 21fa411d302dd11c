"""Request header limits. uvicorn's httptools parser accepts any number and size of headers,
so the app refuses floods itself (431), before routing, authentication or anything else reads
them."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from service.api.problems import HeadersTooLarge

MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024


def limit_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        headers = list(scope.get("headers", ()))
        if len(headers) > MAX_HEADERS:
            raise HeadersTooLarge(f"more than {MAX_HEADERS} header fields", field="headers")
        if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            raise HeadersTooLarge(f"header fields over {MAX_HEADER_BYTES} bytes", field="headers")
        await app(scope, receive, send)

    return middleware
