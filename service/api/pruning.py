"""The server's own prune (README "Retention"): every worker wakes every
settings.prune_interval_seconds and prunes unless another session, of any worker or instance,
is pruning (service/history/retention.prune_unless_running). Off when the interval is 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar

from service.core.errors import ChatkeepError
from service.core.schemas import ConversationsErased
from service.core.settings import Settings
from service.db.errors import UNAVAILABLE
from service.db.pool import own_session
from service.history import retention

log = logging.getLogger(__name__)


class Pruner:
    """One worker's background prune, and what it did (for operators' logs and for tests)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        # Prunes this worker ran, and wake-ups that found another session pruning.
        self.runs = 0
        self.skipped = 0
        self.pruned = ConversationsErased(conversations=0, messages=0, files=0)

    async def run_once(self) -> ConversationsErased | None:
        """Prune unless another session is; None when it was."""
        # The prune's advisory lock is a session's, held across its batches' transactions.
        async with own_session(self.pool, self.settings, "chatkeep prune") as conn:
            erased = await retention.prune_unless_running(conn, self.settings)
        if erased is None:
            self.skipped += 1
            return None
        self.runs += 1
        self.pruned.conversations += erased.conversations
        self.pruned.messages += erased.messages
        self.pruned.files += erased.files
        if erased.conversations:
            log.info(
                "pruned %d conversations (%d messages, %d files)",
                erased.conversations,
                erased.messages,
                erased.files,
            )
        return erased

    async def run_forever(self) -> None:
        """Wake every interval (the first time one interval after start-up) and prune; a
        failure is logged and the next wake-up tries again."""
        while True:
            await asyncio.sleep(self.settings.prune_interval_seconds)
            try:
                await self.run_once()
            except (*UNAVAILABLE, ChatkeepError) as exc:
                log.warning("prune skipped: %s", exc)
            except Exception:
                log.exception("prune failed")


def prune_lifespan(settings: Settings) -> Any:
    """``app.state.pruner``, its loop running in the background for the app's life. Runs after
    the pool's lifespan, whose pool it uses."""

    @asynccontextmanager
    async def run_pruner(app: Litestar) -> AsyncIterator[None]:
        pruner = Pruner(app.state.pool, settings)
        app.state.pruner = pruner
        if settings.prune_interval_seconds == 0:
            yield
            return
        task = asyncio.create_task(pruner.run_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run_pruner
