"""Read replicas with read-your-writes, in HTTP terms (README "Read replicas").

Every successful write's response carries ``Chatkeep-Consistency``: where the primary's
write-ahead log was once the write had committed. A read (a GET under /v1) may send it back in
the same header, and is then served by a replica that has replayed at least that far, else by
the primary; a read without one goes to any replica not too far behind
(service/history/replicas.py). Without CHATKEEP_REPLICA_URLS none of this is wired in: every
request uses the primary, writes carry no token and the header is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import MutableScopeHeaders, State
from litestar.types import Message, Scope

from service.api.lifespan import primary_connection
from service.core.consistency import RULE, format_position, parse_position
from service.core.errors import Unavailable
from service.core.settings import Settings
from service.db.errors import UNAVAILABLE
from service.db.pool import Connection
from service.history.replicas import Replicas

log = logging.getLogger(__name__)

HEADER = "Chatkeep-Consistency"
READS = frozenset({"GET", "HEAD"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A read handler with opt={PRIMARY: True} always reads the primary: the live events' stream,
# whose start must agree with the events the primary's log sends after it.
PRIMARY = "primary"


def replicas_lifespan(settings: Settings) -> Any:
    """``app.state.replicas``: the replicas' pools and positions for the app's life. Runs after
    the pool's lifespan, whose pool it reads write positions from."""

    @asynccontextmanager
    async def open_replicas(app: Litestar) -> AsyncIterator[None]:
        app.state.replicas = await Replicas.open(app.state.pool, settings)
        try:
            yield
        finally:
            await app.state.replicas.close()

    return open_replicas


def seen_position(request: Request[Any, Any, Any]) -> int | None:
    """The consistency token the request sends, if any; a malformed one is InvalidInput."""
    value = request.headers.get(HEADER)
    return None if value is None else parse_position(value, field=HEADER)


async def provide_routed_connection(
    request: Request[Any, Any, Any], state: State
) -> AsyncIterator[Connection]:
    """A pooled connection for one request: for a read, a replica's that has caught up with
    the request's token (or the primary's); for anything else, the primary's."""
    replicas: Replicas = state.replicas
    if request.method in READS:
        seen = seen_position(request)
        if not request.route_handler.opt.get(PRIMARY):
            async with replicas.reading(seen) as conn:
                yield conn
            return
    async with primary_connection(state) as conn:
        yield conn


async def send_consistency_token(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: the token on every successful write's response. The position is
    read once the handler has returned, so its transaction has committed, on any connection
    (the log's end is the server's, not a session's): an upload, which takes its connections
    itself, gets one too."""
    if message["type"] != "http.response.start" or scope.get("method") not in WRITES:
        return
    if not 200 <= message["status"] < 300:
        return
    replicas: Replicas = scope["litestar_app"].state.replicas
    try:
        position = await replicas.write_position()
    except (Unavailable, *UNAVAILABLE) as exc:
        # The write is done; its caller's next read may go to the primary (no token) instead.
        log.warning("no consistency token for this write: %r", exc)
        return
    MutableScopeHeaders.from_message(message)[HEADER] = format_position(position)


READ_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "The newest consistency token this caller received from a write: the read "
    "then sees that write (and every one before it). Without it the read may be served by a "
    "replica a little behind.",
    "schema": {"type": "string", "pattern": r"^\s*[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}\s*$"},
}
WRITE_HEADER = {
    "description": f"A consistency token: send it back on reads to see this write ({RULE}).",
    "schema": {"type": "string"},
}


def document_tokens(document: dict[str, Any]) -> None:
    """The token in the OpenAPI document: sent back by every 2xx of a write under /v1, taken by
    every read there (the live events' stream too, which ignores it)."""
    for path, path_item in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in path_item.items():
            if method.upper() in READS:
                parameters = operation.setdefault("parameters", [])
                if all(parameter["name"] != HEADER for parameter in parameters):
                    parameters.append(READ_PARAMETER)
            if method.upper() in WRITES:
                for status, response in operation["responses"].items():
                    if status.startswith("2"):
                        response.setdefault("headers", {})[HEADER] = WRITE_HEADER
