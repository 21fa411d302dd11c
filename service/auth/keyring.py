"""API key records, cached per worker and kept true by PostgreSQL notifications.

Verifying a key would otherwise cost a database round trip on every request. Each worker keeps
the records it has looked up, and a dedicated connection LISTENs on the channel that the
api_keys trigger notifies on every change, so a revocation reaches every worker in the time a
NOTIFY takes. The cache is trusted only while that connection is up: when it drops, the cache
is emptied and every lookup goes to the database until it is back. Entries also expire after
``key_cache_seconds``, which bounds staleness if a connection dies without the worker noticing.

Key ids the database does not know are remembered too, for UNKNOWN_KEY_SECONDS, so a flood
repeating a bogus key costs one lookup per few seconds, not one per request (a flood of
distinct bogus keys is stopped by the failed-authentication limit, service/auth/limits.py).
Briefly, because no notification announces a new key: a key created meanwhile is refused by
this worker for a few seconds at most, and ids are random, so nobody presents a key before it
exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg

from service.core.settings import Settings
from service.db.errors import UNAVAILABLE
from service.db.pool import checked_out, connect
from service.store import api_keys
from service.store.api_keys import KeyRecord

log = logging.getLogger(__name__)

CHANNEL = "chatkeep_api_keys"
LISTENER_NAME = "chatkeep key listener"
# Enough for every real deployment's keys; only keys that exist are cached.
MAX_ENTRIES = 10_000
RECONNECT_SECONDS = 1.0
UNKNOWN_KEY_SECONDS = 5.0
MAX_UNKNOWN_KEYS = 10_000


class KeyRing:
    def __init__(self, pool: asyncpg.Pool, *, ttl: float, acquire_timeout: float) -> None:
        self._pool = pool
        self._ttl = ttl
        self._acquire_timeout = acquire_timeout
        self._entries: dict[str, tuple[float, KeyRecord]] = {}
        # Key id -> until when the database is not asked about it again.
        self._unknown: dict[str, float] = {}
        # Lookups that went to the database.
        self.database_lookups = 0
        # Bumped by every notification: a lookup that raced a change does not cache its result.
        self._generation = 0
        self.listening = False

    async def lookup(self, key_id: str) -> KeyRecord | None:
        cached = self._entries.get(key_id)
        if cached and self.listening and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        if self._unknown.get(key_id, 0.0) > time.monotonic():
            return None
        generation = self._generation
        self.database_lookups += 1
        async with checked_out(self._pool, self._acquire_timeout) as conn:
            record = await api_keys.get(conn, key_id=key_id)
        if record is None:
            if len(self._unknown) >= MAX_UNKNOWN_KEYS:
                self._unknown.clear()
            self._unknown[key_id] = time.monotonic() + UNKNOWN_KEY_SECONDS
        elif self.listening and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_id] = (time.monotonic(), record)
        return record

    def forget(self, key_id: str | None = None) -> None:
        """Drop one key's record, or every record."""
        self._generation += 1
        if key_id is None:
            self._entries.clear()
        else:
            self._entries.pop(key_id, None)

    def _on_notification(self, conn: Any, pid: int, channel: str, key_id: object) -> None:
        self.forget(str(key_id))

    async def _follow(self, conn: asyncpg.Connection) -> None:
        """Trust the cache while ``conn`` receives notifications; return when it is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
        except UNAVAILABLE as exc:
            log.warning("key change listener failed: %s", exc)
            return
        self.forget()
        self.listening = True
        await lost.wait()
        log.warning("key change listener lost its connection; reconnecting")

    async def listen(self, settings: Settings) -> None:
        """Follow key changes until cancelled, reconnecting whenever the connection drops."""
        while True:
            try:
                conn = await connect(
                    settings.database_url, settings, application_name=LISTENER_NAME
                )
            except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
                log.debug("key change listener cannot connect: %s", exc)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                await self._follow(conn)
            finally:
                self.listening = False
                self.forget()
                conn.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)
