"""Whether this deployment can serve: the database answers and has every migration."""

from __future__ import annotations

import time

import asyncpg

from service.core.schemas import Readiness
from service.db import migrations
from service.db.errors import UNAVAILABLE
from service.db.pool import Connection
from service.store import health


async def migration_status(conn: Connection) -> tuple[list[str], list[str]]:
    """(migrations applied, migrations this version ships that are not)."""
    applied = await health.applied_migrations(conn)
    return applied, migrations.pending(set(applied))


async def readiness(pool: asyncpg.Pool, wait: float, *, draining: bool = False) -> Readiness:
    """Ready when a connection frees up within ``wait`` seconds and the schema is current, and
    the worker is not shutting down (``draining``: the body says so, whatever the database)."""
    try:
        async with pool.acquire(timeout=wait) as conn:
            _, missing = await migration_status(conn)
    except UNAVAILABLE:
        database, missing = False, []
    else:
        database = True
    return Readiness(
        status="draining" if draining else "ready" if database and not missing else "not ready",
        database=database,
        pending_migrations=missing,
    )


async def server_version(conn: Connection) -> str:
    return await health.server_version(conn)


async def round_trip_ms(conn: Connection, samples: int) -> float:
    """The median of ``samples`` round trips to the server, in milliseconds."""
    measured = []
    for _ in range(samples):
        sent = time.perf_counter()
        await health.ping(conn)
        measured.append((time.perf_counter() - sent) * 1000)
    return sorted(measured)[len(measured) // 2]
