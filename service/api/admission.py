"""The admission gate: at most CHATKEEP_MAX_IN_FLIGHT requests of one worker in the app at once.
Past that a request waits up to CHATKEEP_ADMISSION_WAIT_MS for a slot, then gets a quick 503
with Retry-After, instead of joining a queue that slows every request down (bench/REPORT.md
"Overload"). Health checks, the metrics scrape and event streams are not gated.

The gate is the first middleware after routing: a refused request has cost its parsing, its
routing and the 503, not authentication, validation or a handler. (Gating only the database
path, as first done, let every request pay for those before it could be refused, and kept the
CPU busy with requests that were then turned away.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from service.core import metrics
from service.core.errors import Unavailable

# Route option (``opt={UNGATED: True}``) of a handler the gate lets through: a long-lived event
# stream holds no slot for its life.
UNGATED = "ungated"


class Admission:
    """``limit`` slots (0: unlimited); a request without one waits ``wait_seconds`` at most."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._wait = wait_seconds

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        slots = self._slots
        if slots is None:
            yield
            return
        # A free slot costs no timer; only a request that would queue gets a deadline.
        if slots.locked():
            try:
                async with asyncio.timeout(self._wait):
                    await slots.acquire()
            except TimeoutError as exc:
                metrics.ADMISSION_REFUSALS.inc()
                raise Unavailable("the server is at capacity; retry shortly") from exc
        else:
            await slots.acquire()
        try:
            yield
        finally:
            slots.release()


class AdmissionGate(ASGIMiddleware):
    """Holds a slot of ``gate`` for each request of a gated route, until its response is sent."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = UNGATED

    def __init__(self, gate: Admission) -> None:
        self._gate = gate

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async with self._gate.admitted():
            await next_app(scope, receive, send)
