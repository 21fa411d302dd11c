"""Connections: the asyncpg pool (one per process; the HTTP layer's lifespan opens and closes
it) and standalone connections (CLI, importers, listeners), both set up the same way."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec

from service.core import metrics
from service.core.errors import ChatkeepError, Unavailable
from service.core.settings import Settings
from service.db.dburl import asyncpg_dsn
from service.db.errors import UNAVAILABLE

# What every layer passes around: a pooled connection is a proxy of a connection, not a
# subclass, so the type names both.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

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


def _server_settings(settings: Settings, application_name: str) -> dict[str, str]:
    return {
        "application_name": application_name,
        "statement_timeout": str(settings.statement_timeout_ms),
        # A crashed client must not hold a conversation's row lock for long.
        "idle_in_transaction_session_timeout": str(settings.statement_timeout_ms * 2),
    }


def _pooled_session(settings: Settings) -> dict[str, Any]:
    """What the pool's connections ask for when they connect. Through a transaction pooler each
    transaction may run on another server connection: no named (cached) prepared statements,
    and no settings at start-up, which PgBouncer refuses (the role or database carries the
    timeouts then: README "Behind PgBouncer")."""
    if settings.pool_mode == "transaction":
        return {"statement_cache_size": 0, "server_settings": {"application_name": "chatkeep"}}
    return {"server_settings": _server_settings(settings, "chatkeep")}


async def create_pool(settings: Settings, *, prewarm: bool = True) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        asyncpg_dsn(settings.database_url),
        min_size=settings.pool_min_size if prewarm else 0,
        max_size=settings.pool_max_size,
        max_inactive_connection_lifetime=settings.pool_idle_lifetime,
        max_queries=settings.pool_max_queries,
        timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
        init=init_connection,
        reset=keep_session,
        **_pooled_session(settings),
    )


async def connect(
    database_url: str,
    settings: Settings,
    *,
    application_name: str = "chatkeep cli",
    statement_timeout: bool = True,
    through_pooler: bool = False,
) -> asyncpg.Connection:
    """A connection of its own, outside the pool, set up as pooled ones are (codecs, server
    settings). ``statement_timeout=False`` for batch work whose statements may run long (a
    COPY of an import batch, an export's cursors). ``through_pooler``: to a transaction
    pooler, as the pool's connections are in that mode (no named statements, no settings)."""
    server_settings = _server_settings(settings, application_name)
    if not statement_timeout or through_pooler:
        del (
            server_settings["statement_timeout"],
            server_settings["idle_in_transaction_session_timeout"],
        )
    conn = await asyncpg.connect(
        asyncpg_dsn(database_url),
        timeout=settings.connect_timeout,
        server_settings=server_settings,
        statement_cache_size=0 if through_pooler else 100,
    )
    try:
        await init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


@asynccontextmanager
async def connected(
    database_url: str, settings: Settings, **options: Any
) -> AsyncIterator[asyncpg.Connection]:
    """``connect`` for the length of a block."""
    conn = await connect(database_url, settings, **options)
    try:
        yield conn
    finally:
        await conn.close()


# Requests of this process in checked_out waiting for a connection, by id() of the pool (the
# metrics sample it; asyncpg pools cannot be weakly referenced). Plain ints: nothing on the hot
# path but two dict updates.
waiting: dict[int, int] = {}


@asynccontextmanager
async def checked_out(pool: asyncpg.Pool, wait: float) -> AsyncIterator[Connection]:
    """A pooled connection, returned afterwards; Unavailable when none frees up in ``wait``.

    Only a connection known to be healthy goes back: after an error the server reported (a
    constraint, a bad value) or one of ours, it is; after anything else (the server going away
    mid-statement, a cancelled task) asyncpg may still be waiting for the end of a reply, and
    the no-op reset (keep_session) would hand that half-dead connection to the next request
    (tests/integration/test_reliability.py saw it as InternalClientError 500s). Such a
    connection is closed.
    """
    waiting[id(pool)] = waiting.get(id(pool), 0) + 1
    try:
        conn = await pool.acquire(timeout=wait)
    except TimeoutError as exc:
        metrics.POOL_TIMEOUTS.inc()
        raise Unavailable("all database connections are busy; retry shortly") from exc
    finally:
        if waiting[id(pool)] == 1:
            del waiting[id(pool)]
        else:
            waiting[id(pool)] -= 1
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


def own_session(
    pool: asyncpg.Pool, settings: Settings, application_name: str
) -> contextlib.AbstractAsyncContextManager[Connection]:
    """A connection whose session is the block's alone, for a session advisory lock or a long
    snapshot's cursors (named statements): a pooled one, unless the pool goes through a
    transaction pooler, whose sessions change at every transaction; then a connection of its
    own to the direct URL."""
    if settings.pool_mode == "transaction":
        return connected(settings.session_database_url, settings, application_name=application_name)
    return checked_out(pool, settings.pool_acquire_timeout)


def _discard(conn: Connection) -> None:
    # A connection that closed by itself has been handed back already, and says so.
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()
