"""Whether this deployment can serve: the database answers and has every migration."""

from __future__ import annotations

import time

import asyncpg

from service.core.schemas import Readiness
from service.core.settings import Settings
from service.db import migrations
from service.db.dburl import redacted
from service.db.errors import UNAVAILABLE
from service.db.pool import Connection, connect
from service.store import health, replication


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


async def write_position(conn: Connection) -> int:
    """Where the primary's WAL ends: how far behind a replica is, in bytes."""
    return await replication.write_position(conn)


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


async def replica_report(url: str, settings: Settings, primary_position: int) -> tuple[str, bool]:
    """(one line on the replica at ``url``, whether it can serve reads): reachable, a standby
    of some primary, and no more than replica_max_lag_seconds behind."""
    try:
        conn = await connect(url, settings)
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        return f"{redacted(url)}: FAILED to connect ({type(exc).__name__}: {exc})", False
    try:
        replayed = await replication.replay_position(conn)
        lag = await replication.replay_lag_seconds(conn)
    finally:
        await conn.close()
    if replayed is None or lag is None:
        return f"{redacted(url)}: NOT a standby (it is a primary)", False
    behind = max(primary_position - replayed, 0)
    line = f"{redacted(url)}: standby, {behind} bytes of WAL behind, {lag:.1f} s"
    if lag > settings.replica_max_lag_seconds:
        return f"{line}: TOO FAR behind (limit {settings.replica_max_lag_seconds} s)", False
    return line, True
