"""Positions in the write-ahead log (queries in sql/replication.sql); asyncpg reads a pg_lsn as
an int, so positions compare as numbers."""

from __future__ import annotations

from service.db.pool import Connection
from service.db.queries import queries


async def write_position(conn: Connection) -> int:
    """The primary's WAL insert position."""
    position: int = await queries().val(conn, "replication.write_position")
    return position


async def replay_position(conn: Connection) -> int | None:
    """How far a standby has replayed; None when the server is not a standby."""
    position: int | None = await queries().val(conn, "replication.replay_position")
    return position


async def replay_lag_seconds(conn: Connection) -> float | None:
    """Seconds a standby's replay is behind; None when the server is not a standby."""
    lag: float | None = await queries().val(conn, "replication.replay_lag_seconds")
    return lag
