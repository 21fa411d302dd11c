"""The admission gate: at most CHATKEEP_MAX_IN_FLIGHT requests of one worker in the database
path at once. Past that a request waits up to CHATKEEP_ADMISSION_WAIT_MS for a slot, then gets
a quick 503 with Retry-After, instead of joining a queue that slows every request down (at c=64
on two workers, p99 fell from hundreds of milliseconds to under 100: bench/REPORT.md
"Overload"). Health checks and event streams are not gated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
