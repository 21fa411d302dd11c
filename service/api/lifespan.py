"""What the app holds for its life (the pool; the key ring and the live updates hub, and the
listener connection that keeps both current), and the pooled connection each request gets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State

from service.api.shutdown import Drain, drain_on_exit_signal
from service.auth.keyring import KeyRing
from service.core.settings import Settings
from service.db.errors import UNAVAILABLE
from service.db.listener import Listener
from service.db.pool import Connection, checked_out, create_pool
from service.history.live import Hub

log = logging.getLogger(__name__)


def pool_lifespan(settings: Settings) -> Any:
    """``app.state.pool``: opened before the first request and closed after the last."""

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


def listener_lifespan(settings: Settings) -> Any:
    """``app.state.keyring`` and ``app.state.hub`` (live updates) for the app's life, kept true
    by the worker's one listener connection, which runs in the background. Runs after the
    pool's lifespan, whose pool they use."""

    @contextlib.asynccontextmanager
    async def open_listener(app: Litestar) -> AsyncIterator[None]:
        keyring = KeyRing(
            app.state.pool,
            ttl=settings.key_cache_seconds,
            acquire_timeout=settings.pool_acquire_timeout,
        )
        hub = Hub(app.state.pool, settings)
        hub.start()
        app.state.keyring, app.state.hub = keyring, hub
        listener = Listener(settings)
        listener.follow(keyring.channel())
        listener.follow(hub.channel())
        following = asyncio.create_task(listener.run())
        app.state.drain = Drain()
        restore_signals = drain_on_exit_signal(app.state.drain, hub, settings.drain_seconds)
        try:
            yield
        finally:
            restore_signals()
            hub.close()
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

    return open_listener


async def provide_connection(state: State) -> AsyncIterator[Connection]:
    """A pooled connection for one request, returned to the pool when the response is sent."""
    async with primary_connection(state) as conn:
        yield conn


@asynccontextmanager
async def primary_connection(state: State) -> AsyncIterator[Connection]:
    """A connection of the primary's pool."""
    settings: Settings = state.settings
    async with checked_out(state.pool, settings.pool_acquire_timeout) as conn:
        yield conn
