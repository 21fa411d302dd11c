"""One connection per worker process that LISTENs on every channel the worker follows.

Several parts of a worker follow PostgreSQL notifications (API key changes, live updates); each
registers its channel here, and they share one connection and one reconnect loop rather than
holding a connection each. A notification sent while the connection is down is lost, so every
registration is told when the connection comes back (``on_up``) and when it is lost
(``on_down``): what it cached meanwhile cannot be trusted, and what it missed it must read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from service.core.settings import Settings
from service.db.errors import UNAVAILABLE
from service.db.pool import connect

log = logging.getLogger(__name__)

APPLICATION_NAME = "chatkeep listener"
RECONNECT_SECONDS = 1.0


@dataclass(frozen=True)
class Channel:
    name: str
    # Called with each notification's payload, on the event loop; must not block.
    on_notification: Callable[[str], None]
    # The connection is listening on the channel (again): notifications flow from now on.
    on_up: Callable[[], None]
    # The connection is lost: notifications from now on until the next on_up are lost.
    on_down: Callable[[], None]


class Listener:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: list[Channel] = []
        self.listening = False

    def follow(self, channel: Channel) -> None:
        """Register a channel; before ``run`` starts, or it waits for the next reconnection."""
        self._channels.append(channel)

    def _dispatch(self, channel: Channel) -> Callable[[Any, int, str, object], None]:
        def deliver(_conn: Any, _pid: int, _channel: str, payload: object) -> None:
            try:
                channel.on_notification(str(payload))
            except Exception:
                # One bad payload must not stop the listener for every other follower.
                log.exception("notification on %s not handled", channel.name)

        return deliver

    async def _follow(self, conn: asyncpg.Connection) -> None:
        """Listen on every channel while ``conn`` lives; return when it is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            for channel in self._channels:
                await conn.add_listener(channel.name, self._dispatch(channel))
        except UNAVAILABLE as exc:
            log.warning("notification listener failed: %s", exc)
            return
        self.listening = True
        for channel in self._channels:
            channel.on_up()
        await lost.wait()
        log.warning("notification listener lost its connection; reconnecting")

    async def run(self) -> None:
        """Follow the channels until cancelled, reconnecting whenever the connection drops."""
        while True:
            try:
                # LISTEN belongs to a session: never through a transaction pooler.
                conn = await connect(
                    self._settings.session_database_url,
                    self._settings,
                    application_name=APPLICATION_NAME,
                )
            except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
                log.debug("notification listener cannot connect: %s", exc)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                await self._follow(conn)
            finally:
                was_listening, self.listening = self.listening, False
                if was_listening:
                    for channel in self._channels:
                        channel.on_down()
                conn.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)
