"""The asyncpg pool: one per process, opened and closed by the Litestar lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar
from litestar.datastructures import State

from service.dburl import asyncpg_dsn
from service.errors import UNAVAILABLE, ChatkeepError, Unavailable
from service.settings import Settings

log = logging.getLogger(__name__)

# What handlers get from the pool (one concrete type: Litestar's signature model needs that).
PooledConnection = asyncpg.pool.PoolConnectionProxy

# Binary jsonb is a version byte followed by the JSON text.
JSONB_VERSION = b"\x01"
_json_decoder = msgspec.json.Decoder()


def _encode_jsonb(value: Any) -> bytes:
    return JSONB_VERSION + msgspec.json.encode(value)


def _decode_jsonb(data: bytes) -> msgspec.Raw:
    # Not parsed: responses embed the stored JSON as it is (msgspec writes Raw verbatim), which
    # halves the CPU a history read costs in Python (bench/NOTES.md).
    return msgspec.Raw(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up: json and jsonb travel as msgspec-encoded bytes."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=msgspec.json.encode,
        decoder=_json_decoder.decode,
        format="binary",
    )


async def keep_session(conn: asyncpg.Connection) -> None:
    """Release hook that skips asyncpg's default reset query (RESET ALL, UNLISTEN, ...).

    chatkeep never changes session state (no SET, LISTEN, advisory locks or cursors outside a
    transaction), so the default reset would only add a round trip to every request. asyncpg
    still rolls back a transaction left open before calling this.
    """


async def create_pool(settings: Settings, *, prewarm: bool = True) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        asyncpg_dsn(settings.database_url),
        min_size=settings.pool_min_size if prewarm else 0,
        max_size=settings.pool_max_size,
        timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
        init=init_connection,
        reset=keep_session,
        server_settings={
            "application_name": "chatkeep",
            "statement_timeout": str(settings.statement_timeout_ms),
            # A crashed client must not hold a conversation's row lock for long.
            "idle_in_transaction_session_timeout": str(settings.statement_timeout_ms * 2),
        },
    )


def lifespan(settings: Settings) -> Any:
    """Open the pool before the first request and close it after the last."""

    @asynccontextmanager
    async def open_pool(app: Litestar) -> AsyncIterator[None]:
        try:
            app.state.pool = await create_pool(settings)
        except UNAVAILABLE as exc:
            # Start anyway: requests get 503s and /health/ready says why until the database is
            # back, and the pool connects by itself then; no restart needed.
            log.warning("database unavailable at start-up (%s); serving 503 until it is back", exc)
            app.state.pool = await create_pool(settings, prewarm=False)
        try:
            yield
        finally:
            await app.state.pool.close()

    return open_pool


@asynccontextmanager
async def checked_out(pool: asyncpg.Pool, wait: float) -> AsyncIterator[PooledConnection]:
    """A pooled connection, returned afterwards; Unavailable when none frees up in ``wait``.

    Only a connection known to be healthy goes back: after an error the server reported (a
    constraint, a bad value) or one of ours, it is; after anything else (the server going away
    mid-statement, a cancelled task) asyncpg may still be waiting for the end of a reply, and
    the no-op reset (keep_session) would hand that half-dead connection to the next request
    (tests/test_reliability.py saw it as InternalClientError 500s). Such a connection is closed.
    """
    try:
        conn = await pool.acquire(timeout=wait)
    except TimeoutError as exc:
        raise Unavailable("all database connections are busy; retry shortly") from exc
    try:
        yield conn
    except (ChatkeepError, asyncpg.PostgresError) as exc:
        if isinstance(exc, UNAVAILABLE):
            _discard(conn)
        raise
    except BaseException:
        _discard(conn)
        raise
    finally:
        await pool.release(conn)


def _discard(conn: PooledConnection) -> None:
    # A connection that closed by itself has been handed back already, and says so.
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


async def provide_connection(state: State) -> AsyncIterator[PooledConnection]:
    """A pooled connection for one request, returned to the pool when the response is sent."""
    settings: Settings = state.settings
    async with checked_out(state.pool, settings.pool_acquire_timeout) as conn:
        yield conn
