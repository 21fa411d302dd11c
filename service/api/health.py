"""Liveness and readiness probes."""

from __future__ import annotations

import asyncpg
from litestar import Controller, Response, get
from litestar.datastructures import State

from service.errors import RETRY_AFTER_SECONDS, UNAVAILABLE
from service.migrations import pending
from service.models import Liveness, Readiness
from service.queries import queries
from service.settings import Settings


class HealthController(Controller):
    path = "/health"
    tags = ("health",)

    @get("/live")
    async def live(self) -> Liveness:
        """The process is up and serving requests."""
        return Liveness()

    @get("/ready")
    async def ready(self, state: State) -> Response[Readiness]:
        """Ready when PostgreSQL answers and has every migration this version ships; else 503."""
        pool: asyncpg.Pool = state.pool
        settings: Settings = state.settings
        try:
            async with pool.acquire(timeout=settings.pool_acquire_timeout) as conn:
                rows = await queries().many(conn, "health.applied_migrations")
        except asyncpg.UndefinedTableError:
            missing = pending(set())
        except UNAVAILABLE:
            return Response(
                Readiness(status="not ready", database=False, pending_migrations=[]),
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        else:
            missing = pending({row["migration_id"] for row in rows})
        return Response(
            Readiness(
                status="not ready" if missing else "ready",
                database=True,
                pending_migrations=missing,
            ),
            status_code=503 if missing else 200,
        )
