"""Read replicas: which server a read goes to, so that it sees every write its caller has seen.

Each worker keeps a small pool per replica and learns in the background (every
``replica_poll_seconds``) how far each has replayed the primary's write-ahead log, and how far
the primary has written it. A read that carries a consistency token (the position a write the
caller saw reached, ``service/core/consistency.py``) goes to a replica that has replayed that
far: known from the last poll at no cost, else asked once on the connection the read would then
use; else to the primary. A read without a token goes to the next replica in turn that answers
and is less than ``replica_max_lag_seconds`` behind, else to the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import msgspec

from service.core.errors import Unavailable
from service.core.settings import Settings, env_name
from service.db.dburl import DatabaseUrlError, redacted
from service.db.errors import UNAVAILABLE
from service.db.pool import Connection, checked_out, create_pool
from service.store import replication

log = logging.getLogger(__name__)

# A read waits this long at most for a busy replica's connection, then goes to the primary.
SPILL_WAIT_SECONDS = 0.05
# Before any position is known.
UNKNOWN = -1


@dataclass(eq=False)
class Replica:
    name: str
    pool: asyncpg.Pool
    # The last replay position it reported, and whether it answered the last poll as a standby.
    replayed: int = UNKNOWN
    reachable: bool = False
    # Seconds behind the primary at the last poll.
    lag_seconds: float = 0.0
    # Serves reads without a token: reachable, and not too far behind.
    usable: bool = False
    # Reads it served (tests, metrics).
    reads: int = 0


class Replicas:
    """This worker's replicas of the primary pool ``primary``, and how far each has got."""

    def __init__(self, primary: asyncpg.Pool, replicas: list[Replica], settings: Settings) -> None:
        self.primary = primary
        self.replicas = replicas
        self.settings = settings
        # Reads that went to the primary (tests, metrics).
        self.primary_reads = 0
        self._turn = 0
        # (when first seen, the primary's write position), oldest first: how long ago the
        # primary wrote what a replica has not replayed yet is how far behind it is.
        self._written: deque[tuple[float, int]] = deque()
        self._following: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, primary: asyncpg.Pool, settings: Settings) -> Replicas:
        """Pools for the replicas ``settings`` names (connecting when first used), and their
        positions, polled once before returning and then in the background until ``close``."""
        replicas = []
        for number, url in enumerate(settings.replica_url_list, start=1):
            options = msgspec.structs.replace(
                settings, database_url=url, pool_max_size=settings.replica_pool_max_size
            )
            try:
                pool = await create_pool(options, prewarm=False)
            except DatabaseUrlError as exc:
                message = str(exc).removeprefix("DATABASE_URL ")
                raise DatabaseUrlError(
                    f"{env_name('replica_urls')}, replica {number}: {message}"
                ) from None
            replicas.append(Replica(redacted(url), pool))
        opened = cls(primary, replicas, settings)
        await opened.refresh()
        opened._following = asyncio.create_task(opened._follow())
        return opened

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following
        await asyncio.gather(*(replica.pool.close() for replica in self.replicas))

    @asynccontextmanager
    async def reading(self, seen: int | None) -> AsyncIterator[Connection]:
        """A pooled connection for a read by a caller who has seen the primary at ``seen`` (a
        consistency token; None: no token): a replica's when one may serve it, else the
        primary's."""
        async with contextlib.AsyncExitStack() as stack:
            replica = self._choose(seen)
            conn = None if replica is None else await self._lease(stack, replica, seen)
            if replica is not None and conn is not None:
                replica.reads += 1
            else:
                conn = await stack.enter_async_context(
                    checked_out(self.primary, self.settings.pool_acquire_timeout)
                )
                self.primary_reads += 1
            yield conn

    async def write_position(self) -> int:
        """Where the primary's log ends now: read after a commit, that commit's token."""
        async with checked_out(self.primary, self.settings.pool_acquire_timeout) as conn:
            return await replication.write_position(conn)

    def _choose(self, seen: int | None) -> Replica | None:
        """The next replica in turn that may serve the read, as far as the last poll knows; with
        a token no replica is known to have reached, the next one to ask."""
        count = len(self.replicas)
        start = self._turn
        self._turn = (start + 1) % count
        in_turn = [self.replicas[(start + offset) % count] for offset in range(count)]
        if seen is not None:
            for replica in in_turn:
                if replica.reachable and replica.replayed >= seen:
                    return replica
        return next((replica for replica in in_turn if replica.usable), None)

    async def _lease(
        self, stack: contextlib.AsyncExitStack, replica: Replica, seen: int | None
    ) -> Connection | None:
        """A connection of ``replica``, held until ``stack`` closes, when it has replayed up to
        ``seen`` (asked on that connection if the last poll did not show it); None, with the
        connection given back, when it has not, is busy or does not answer."""
        try:
            async with contextlib.AsyncExitStack() as lease:
                conn = await lease.enter_async_context(
                    checked_out(replica.pool, SPILL_WAIT_SECONDS)
                )
                if seen is not None and replica.replayed < seen:
                    self._replayed(replica, await replication.replay_position(conn))
                    if replica.replayed < seen:
                        return None
                await stack.enter_async_context(lease.pop_all())
                return conn
        except Unavailable:
            # Busy: this read spills over to the primary.
            return None
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            # Down, or refusing us (no such database, a wrong password): the primary serves.
            self._lost(replica, exc)
            return None

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_poll_seconds)
            try:
                await self.refresh()
            except Exception:
                # Stopping would freeze what the reads go by: keep polling.
                log.exception("polling the replicas failed")

    async def refresh(self) -> None:
        """One poll: the primary's write position, then each replica's replay position and how
        far behind that leaves it."""
        now = time.monotonic()
        with contextlib.suppress(Unavailable, *UNAVAILABLE):
            # A primary that does not answer: the requests say so; the replicas' lag waits.
            async with asyncio.timeout(self.settings.connect_timeout):
                self._wrote(now, await self.write_position())
        await asyncio.gather(*(self._poll(replica) for replica in self.replicas))
        for replica in self.replicas:
            replica.lag_seconds = self._lag(replica, now)
            behind = replica.lag_seconds > self.settings.replica_max_lag_seconds
            usable = replica.reachable and not behind
            if replica.reachable and usable != replica.usable:
                log.warning(
                    "replica %s is %.1f s behind the primary: %s",
                    replica.name,
                    replica.lag_seconds,
                    "it serves reads again" if usable else "reads without a token go elsewhere",
                )
            replica.usable = usable

    async def _poll(self, replica: Replica) -> None:
        try:
            async with (
                asyncio.timeout(self.settings.connect_timeout),
                checked_out(replica.pool, self.settings.pool_acquire_timeout) as conn,
            ):
                self._replayed(replica, await replication.replay_position(conn))
        except Unavailable:
            pass  # every connection busy serving reads: it answers
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            self._lost(replica, exc)

    def _replayed(self, replica: Replica, position: int | None) -> None:
        if position is None:
            if replica.reachable or replica.replayed == UNKNOWN:
                log.warning(
                    "replica %s is not a standby (it replays no primary's log): no reads go to it",
                    replica.name,
                )
            replica.reachable, replica.usable, replica.replayed = False, False, 0
            return
        if not replica.reachable:
            log.info("replica %s answers, replayed up to %s", replica.name, position)
        replica.reachable, replica.replayed = True, position

    def _lost(self, replica: Replica, exc: BaseException) -> None:
        if replica.reachable or replica.replayed == UNKNOWN:
            log.warning("replica %s does not answer (%r): no reads go to it", replica.name, exc)
        replica.reachable, replica.usable, replica.replayed = False, False, 0

    def _wrote(self, now: float, position: int) -> None:
        if not self._written or position > self._written[-1][1]:
            self._written.append((now, position))
        # Keep the newest position older than the lag allowed: a replica short of it is too far
        # behind, one past it is not.
        horizon = now - self.settings.replica_max_lag_seconds
        while len(self._written) > 1 and self._written[1][0] <= horizon:
            self._written.popleft()

    def _lag(self, replica: Replica, now: float) -> float:
        """Seconds since the primary first showed a position the replica has not replayed."""
        for seen_at, position in self._written:
            if position > replica.replayed:
                return now - seen_at
        return 0.0
