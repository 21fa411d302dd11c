"""API key records, cached per worker and kept true by PostgreSQL notifications.

Verifying a key would otherwise cost a database round trip on every request. Each worker keeps
the records it has looked up, and a dedicated connection LISTENs on the channel that the
api_keys trigger notifies on every change, so a revocation reaches every worker in the time a
NOTIFY takes (the worker's one listener connection, service/db/listener.py, which live updates
share). The cache is trusted only while that connection is up: when it drops, the cache
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

import logging
import time

import asyncpg

from service.db.listener import APPLICATION_NAME, Channel
from service.db.pool import checked_out
from service.store import api_keys
from service.store.api_keys import KeyRecord

log = logging.getLogger(__name__)

CHANNEL = "chatkeep_api_keys"
# The worker's listener connection, shared with live updates.
LISTENER_NAME = APPLICATION_NAME
# Enough for every real deployment's keys; only keys that exist are cached.
MAX_ENTRIES = 10_000
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

    def _stop_trusting(self) -> None:
        self.listening = False
        self.forget()

    def _start_trusting(self) -> None:
        self.forget()
        self.listening = True

    def channel(self) -> Channel:
        """What the worker's listener (service/db/listener.py) follows for this ring: the cache
        is trusted only while notifications can reach it."""
        return Channel(
            name=CHANNEL,
            on_notification=self.forget,
            on_up=self._start_trusting,
            on_down=self._stop_trusting,
        )
