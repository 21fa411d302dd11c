"""``GET /metrics`` (Prometheus text format, for a scraper holding CHATKEEP_METRICS_TOKEN) and
each worker's sampling of its connection pool for it."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Request, Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.admission import UNGATED
from service.core import metrics
from service.core.errors import Unauthorized
from service.core.settings import Settings
from service.db import pool as pools

SAMPLE_SECONDS = 1.0


def metrics_route(settings: Settings) -> HTTPRouteHandler:
    """The endpoint, answering only requests that carry the token (kept out of the OpenAPI
    document: it is for the operator's scraper, not the API's callers)."""
    expected = f"Bearer {settings.metrics_token}".encode()

    # In a thread: in multiprocess mode the answer reads every worker's files.
    @get("/metrics", include_in_schema=False, sync_to_thread=True, opt={UNGATED: True})
    def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("GET /metrics needs the bearer token CHATKEEP_METRICS_TOKEN holds")
        return Response(
            generate_latest(metrics.registry()), media_type=CONTENT_TYPE_LATEST, status_code=200
        )

    return scrape


def sample(pool_by_name: dict[str, asyncpg.Pool]) -> None:
    """Pool gauges as they are now. The waiters are the requests in checked_out that have not
    got a connection: one taken from the idle ones never waits, so a sample sees only real
    waits (and connections being opened for them)."""
    for name, pool in pool_by_name.items():
        size = pool.get_size()
        metrics.POOL_CONNECTIONS.labels(name).set(size)
        metrics.POOL_IN_USE.labels(name).set(size - pool.get_idle_size())
        metrics.POOL_WAITERS.labels(name).set(pools.waiting.get(id(pool), 0))


def metrics_lifespan(settings: Settings) -> Any:
    """Samples the pools every SAMPLE_SECONDS while metrics are on; when the worker stops, its
    gauges stop counting. Runs after the pool's lifespan, whose pool it reads."""

    @asynccontextmanager
    async def sampling(app: Litestar) -> AsyncIterator[None]:
        if not settings.metrics_token:
            yield
            return

        async def keep_sampling() -> None:
            while True:
                pools = {"primary": app.state.pool}
                # The read replicas' pools, when CHATKEEP_REPLICA_URLS names some.
                if replicas := getattr(app.state, "replicas", None):
                    pools |= {f"replica{n}": r.pool for n, r in enumerate(replicas.replicas, 1)}
                sample(pools)
                await asyncio.sleep(SAMPLE_SECONDS)

        task = asyncio.create_task(keep_sampling())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            metrics.process_gone()

    return sampling
