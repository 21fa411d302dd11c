"""What every HTTP request leaves behind: its ``X-Request-ID`` (on the response, and on every
log line written while it is served), one access log line, and its count and duration in the
metrics, labelled by the route template.

One pure ASGI wrapper around the whole application (routing and error handling included), so
404s, 405s and problem responses are observed like the rest, at the cost of one wrapped
``send`` per request."""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from service.core import metrics, request_ids
from service.core.settings import Settings

access_log = logging.getLogger("chatkeep.access")
_HEADER = request_ids.HEADER.lower().encode("ascii")
# Methods counted by name; any other (a client may send any token) shares one label.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
Children = tuple[Any, Any]


class Observe:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.counting = bool(settings.metrics_token)
        self.logging = settings.access_log
        # The labelled children of the request counter and histogram, looked up once each:
        # prometheus-client's labels() takes a lock and builds a tuple every time.
        self._children: dict[tuple[str, str, int], Children] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = request_ids.chosen(_header(scope)) or request_ids.new()
        token = request_ids.current.set(request_id)
        started = time.perf_counter()
        status = 500
        id_header = (_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if self.counting:
                self._count(scope, status, seconds)
            if self.logging:
                _log_access(scope, status, seconds)
            request_ids.current.reset(token)

    def _count(self, scope: HTTPScope, status: int, seconds: float) -> None:
        route = scope.get("path_template", metrics.UNMATCHED_ROUTE)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.HTTP_REQUESTS.labels(route, method, str(status)),
                metrics.HTTP_DURATION.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _header(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == _HEADER:
            return bytes(value)
    return None


def _log_access(scope: HTTPScope, status: int, seconds: float) -> None:
    """One line per request: who, what, the answer and how long it took. The query string is
    left out (it may carry user ids and cursors); the route template says what was asked."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    milliseconds = round(seconds * 1000, 2)
    access_log.info(
        '%s "%s %s" %d %.2fms',
        client[0] if client else "-",
        scope["method"],
        scope["path"],
        status,
        milliseconds,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": scope.get("path_template", metrics.UNMATCHED_ROUTE),
            "status": status,
            "duration_ms": milliseconds,
        },
    )
