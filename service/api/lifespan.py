"""What the app holds for its life (the pool; the key ring and the live updates hub, and the
listener connection that keeps both current), and the pooled connection each request gets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State

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
        restore_signals = end_streams_on_exit_signal(hub)
        try:
            yield
        finally:
            restore_signals()
            hub.close()
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

    return open_listener


def end_streams_on_exit_signal(hub: Hub) -> Callable[[], None]:
    """Make SIGTERM and SIGINT end the event streams; returns what undoes it.

    uvicorn waits for every open response to finish before it runs the lifespan's shutdown, and
    an event stream does not finish by itself: so the signal that starts the shutdown ends them
    (their clients reconnect, to another worker or instance, and resume). uvicorn's own handlers
    stay in charge of the rest: each is called after ours."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    chained: dict[signal.Signals, tuple[Any, Any]] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def end_streams(number: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.close)
            previous(number, frame)

        signal.signal(signum, end_streams)
        chained[signum] = (previous, end_streams)

    def restore() -> None:
        for signum, (previous, ours) in chained.items():
            if signal.getsignal(signum) is ours:
                signal.signal(signum, previous)

    return restore


async def provide_connection(state: State) -> AsyncIterator[Connection]:
    """A pooled connection for one request, returned to the pool when the response is sent."""
    settings: Settings = state.settings
    async with checked_out(state.pool, settings.pool_acquire_timeout) as conn:
        yield conn
