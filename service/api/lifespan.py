"""What the app holds for its life (the pool, the key ring and its listener), and the pooled
connection each request gets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State

from service.auth.keyring import KeyRing
from service.core.settings import Settings
from service.db.errors import UNAVAILABLE
from service.db.pool import Connection, checked_out, create_pool

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


def keyring_lifespan(settings: Settings) -> Any:
    """``app.state.keyring`` for the app's life, its listener running in the background.
    Runs after the pool's lifespan, whose pool it uses."""

    @contextlib.asynccontextmanager
    async def open_keyring(app: Litestar) -> AsyncIterator[None]:
        keyring = KeyRing(
            app.state.pool,
            ttl=settings.key_cache_seconds,
            acquire_timeout=settings.pool_acquire_timeout,
        )
        app.state.keyring = keyring
        listener = asyncio.create_task(keyring.listen(settings))
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    return open_keyring


async def provide_connection(state: State) -> AsyncIterator[Connection]:
    """A pooled connection for one request, returned to the pool when the response is sent."""
    settings: Settings = state.settings
    async with checked_out(state.pool, settings.pool_acquire_timeout) as conn:
        yield conn
