"""Live updates: each worker's hub of event streams, fed by PostgreSQL notifications.

Writers never talk to subscribers. Triggers (migrations/0012.events.sql) log every change of a
conversation in its transaction and NOTIFY channel ``chatkeep_events`` with ids only; every
worker of every instance LISTENs on its one listener connection (service/db/listener.py). On a
notification a worker reads the new events once, with the rows they name, encodes each as an
SSE frame once, joins the frames of one read once, and hands that batch to each of its
subscribers of that conversation. Events that follow the last hand-over within
``events_coalesce_ms`` wait for the interval's end, so a busy conversation (a reply streamed in
token by token) costs each subscriber one write per interval rather than one per event. While
the machine is short of CPU (service/core/cpu_pressure.py), the interval is
``events_busy_coalesce_ms``: fan-out yields the CPU to the writers (bench/REPORT.md "Events").

- Subscribers have bounded buffers (``events_buffer`` frames). Handing over never waits: a
  subscriber whose buffer is full is cut off (its buffer is emptied, its stream ends) and
  resumes with Last-Event-ID from the log, so a slow reader costs neither the writers nor the
  other subscribers anything.
- A conversation stream's frames carry the event's seq as SSE id. A new subscriber registers
  first, then replays the log after its position; frames it already sent are skipped by seq, so
  nothing is missed and nothing is sent twice.
- Notifications lost while the listener was down are read again when it is back (each
  conversation from the last seq the worker handed over); owners' streams get a ``reset``.
- An owner's stream (conversation-list changes) is live only: it starts with ``ready`` and the
  client then (re)loads its list; ``reset`` asks it to load it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
import msgspec

from service.core import metrics
from service.core.cpu_pressure import CpuPressure
from service.core.errors import InvalidInput, conversation_not_found
from service.core.principal import Principal
from service.core.refs import ConversationRef
from service.core.settings import Settings
from service.db.listener import Channel
from service.db.pool import Connection, checked_out
from service.history.conversations import find
from service.store import events
from service.store.events import LoggedEvent

log = logging.getLogger(__name__)

CHANNEL = "chatkeep_events"
# Events read per query, replaying or catching up.
PAGE = 500
# How long a client waits before reconnecting (SSE `retry`, milliseconds).
RETRY_MILLISECONDS = 1000
HEARTBEAT = b": heartbeat\n\n"

Frame = tuple[int, bytes]


def frame(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE event. msgspec's JSON has no raw line breaks, so the data is one line."""
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return head + b"event: " + event.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


def owner_key(user_id: str | None, visitor_hash: bytes | None) -> str | None:
    """events_owner_key of migrations/0012.events.sql: a digest of usage_owner (0007)."""
    if user_id is not None:
        owner = f"user:{user_id}"
    elif visitor_hash is not None:
        owner = f"visitor:{visitor_hash.hex()}"
    else:
        return None
    return hashlib.md5(owner.encode(), usedforsecurity=False).hexdigest()


def event_frame(conversation_id: UUID, event: LoggedEvent) -> bytes | None:
    """The frame of a logged event; None for a message gone since (its deletion follows)."""
    if event.type == "message.deleted":
        data: Any = {
            "id": event.message_id,
            "conversation_id": conversation_id,
            "seq": event.message_seq,
        }
    else:
        data = event.message or event.conversation
        if data is None:
            return None
    return frame(event.type, data, event.seq)


class Batch(NamedTuple):
    """Frames handed over together: joined once for all the subscribers that take them whole."""

    frames: tuple[Frame, ...]
    data: bytes

    @classmethod
    def of(cls, *frames: Frame) -> Batch:
        return cls(frames, b"".join(data for _seq, data in frames))


HEARTBEAT_BATCH = Batch.of((0, HEARTBEAT))


class Subscriber:
    """One stream's buffer: what the hub handed over and the stream has not written yet.

    A deque and one waiter rather than an asyncio.Queue: a thousand subscribers take every
    event, and the queue's bookkeeping per put and get was a fair part of the fan-out."""

    def __init__(self, size: int, deadline: float) -> None:
        self._batches: deque[Batch] = deque()
        # Frames held, against ``size``.
        self._held = 0
        self._size = size
        self._waiter: asyncio.Future[None] | None = None
        # No more is taken; the stream ends once it has written what it holds.
        self.ended = False
        # When the stream ends anyway (events_max_seconds), on the loop's clock.
        self.deadline = deadline
        # Whether it was given anything since the last heartbeat tick.
        self.busy = False

    def give(self, batch: Batch) -> None:
        self.busy = True
        if self.ended:
            return
        if self._held + len(batch.frames) > self._size:
            self.close()
            return
        self._batches.append(batch)
        self._held += len(batch.frames)
        self._wake()

    def end(self) -> None:
        """End the stream once it has written what it holds."""
        self.ended = True
        self._wake()

    def close(self) -> None:
        """End the stream as soon as it reads its buffer: what it holds is dropped (the client
        replays it with Last-Event-ID)."""
        self._batches.clear()
        self._held = 0
        self.end()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def take(self) -> list[Batch] | None:
        """All that waits (a stream that fell behind catches up in one write); None once the
        stream has ended."""
        while not self._batches:
            if self.ended:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        batches = list(self._batches)
        self._batches.clear()
        self._held = 0
        return batches


@dataclass(eq=False)
class Topic:
    subscribers: set[Subscriber] = field(default_factory=set)
    # Conversation topics: the last seq handed over (None until the first subscriber replayed);
    # whether a read runs, and whether another notification came meanwhile.
    seq: int | None = None
    reading: bool = False
    again: bool = False
    # Conversation topics: no read before this time on the loop's clock (events_coalesce_ms).
    next_read: float = 0.0
    # Owner topics: conversations changed since the last read, and how ("n", "c", "d", "m-", "m+").
    pending: dict[UUID, str] = field(default_factory=dict)


class Hub:
    """The worker's subscribers, by conversation and by owner."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._cpu = CpuPressure()
        self._conversations: dict[UUID, Topic] = {}
        self._owners: dict[str, Topic] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._beating: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        """Run the heartbeat (on the running loop) until ``close``."""
        self._beating = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        """Every half heartbeat interval: a heartbeat to each stream given nothing since the
        last tick, and the end of streams past their lifetime. One timer for the worker, rather
        than one per stream re-armed at every event."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._settings.events_heartbeat_seconds / 2)
            now = loop.time()
            for topic in (*self._conversations.values(), *self._owners.values()):
                for subscriber in list(topic.subscribers):
                    if now >= subscriber.deadline:
                        subscriber.close()
                    elif not subscriber.busy:
                        subscriber.give(HEARTBEAT_BATCH)
                    subscriber.busy = False

    # -- what the listener calls ------------------------------------------------------------

    def channel(self) -> Channel:
        return Channel(
            name=CHANNEL, on_notification=self.notified, on_up=self._caught_up, on_down=lambda: None
        )

    def notified(self, payload: str) -> None:
        kind, conversation, *owners = payload.split(" ")
        conversation_id = UUID(conversation)
        if kind == "c":
            self._conversation_changed(conversation_id)
            self._owner_changed(owners[1], conversation_id, "c")
        elif kind == "n":
            self._owner_changed(owners[0], conversation_id, "n")
        elif kind == "d":
            self._conversation_deleted(conversation_id)
            self._owner_changed(owners[0], conversation_id, "d")
        elif kind == "m":
            self._owner_changed(owners[0], conversation_id, "m-")
            self._owner_changed(owners[1], conversation_id, "m+")

    def _caught_up(self) -> None:
        """The listener is (back) up: notifications may have been lost meanwhile."""
        for conversation_id in list(self._conversations):
            self._conversation_changed(conversation_id)
        reset = Batch.of((0, frame("reset", {"reason": "notifications may have been missed"})))
        for topic in self._owners.values():
            for subscriber in topic.subscribers:
                subscriber.give(reset)

    def close(self) -> None:
        """End every stream (the worker is shutting down) and refuse new ones."""
        self.closed = True
        if self._beating is not None:
            self._beating.cancel()
        for topic in (*self._conversations.values(), *self._owners.values()):
            for subscriber in topic.subscribers:
                subscriber.close()

    # -- conversations ------------------------------------------------------------------------

    def _spawn(self, work: Callable[[], Any]) -> None:
        task = asyncio.get_running_loop().create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _conversation_changed(self, conversation_id: UUID) -> None:
        topic = self._conversations.get(conversation_id)
        if topic is None:
            return
        if topic.seq is None or topic.reading:
            topic.again = True
            return
        topic.reading = True
        self._spawn(lambda: self._read(conversation_id, topic))

    async def _read(self, conversation_id: UUID, topic: Topic) -> None:
        """Hand the conversation's new events to its subscribers, reading until none is left.
        Events that come within ``events_coalesce_ms`` of the last hand-over wait for the
        interval's end and go out together: one write per subscriber for many events."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                wait = topic.next_read - loop.time()
                if wait > 0 and not self.closed:
                    await asyncio.sleep(wait)
                topic.again = False
                assert topic.seq is not None
                logged = await self.read(conversation_id, topic.seq)
                frames = []
                for event in logged:
                    topic.seq = event.seq
                    data = event_frame(conversation_id, event)
                    if data is not None:
                        frames.append((event.seq, data))
                if frames:
                    batch = Batch.of(*frames)
                    for subscriber in list(topic.subscribers):
                        subscriber.give(batch)
                    topic.next_read = loop.time() + self._coalescing_seconds()
                if len(logged) < PAGE and not topic.again:
                    return
        except Exception:
            # Its subscribers resume from the log when they reconnect.
            log.exception("live events of conversation %s could not be read", conversation_id)
            for subscriber in topic.subscribers:
                subscriber.close()
        finally:
            topic.reading = False

    def _coalescing_seconds(self) -> float:
        milliseconds = self._settings.events_coalesce_ms
        if self._cpu.short():
            milliseconds = max(milliseconds, self._settings.events_busy_coalesce_ms)
        return milliseconds / 1000

    def _conversation_deleted(self, conversation_id: UUID) -> None:
        topic = self._conversations.get(conversation_id)
        if topic is None:
            return
        deleted = Batch.of((0, frame("conversation.deleted", {"id": conversation_id})))
        for subscriber in topic.subscribers:
            # A full buffer is cut off by give (a reconnection gets the 404 that says as much).
            subscriber.give(deleted)
            subscriber.end()

    async def read(self, conversation_id: UUID, after_seq: int) -> list[LoggedEvent]:
        async with checked_out(self._pool, self._settings.pool_acquire_timeout) as conn:
            return await events.after(
                conn, conversation_id=conversation_id, after_seq=after_seq, limit=PAGE
            )

    @contextlib.contextmanager
    def _subscribed(self, topics: dict[Any, Topic], key: Any) -> Any:
        deadline = asyncio.get_running_loop().time() + self._settings.events_max_seconds
        subscriber = Subscriber(self._settings.events_buffer, deadline)
        topic = topics.setdefault(key, Topic())
        topic.subscribers.add(subscriber)
        if self.closed:
            subscriber.close()
        kind = "owner" if topics is self._owners else "conversation"
        streams = metrics.EVENT_STREAMS.labels(kind)
        streams.inc()
        try:
            yield subscriber, topic
        finally:
            streams.dec()
            topic.subscribers.discard(subscriber)
            if not topic.subscribers and topics.get(key) is topic:
                del topics[key]

    def _replayed(self, conversation_id: UUID, topic: Topic, seq: int) -> None:
        """A subscriber replayed the log up to ``seq``: live reads of a new topic start there."""
        if topic.seq is None:
            topic.seq = seq
            if topic.again:
                self._conversation_changed(conversation_id)

    async def conversation_frames(
        self, conversation_id: UUID, after: int, *, reset: bool = False
    ) -> AsyncIterator[bytes]:
        """The stream of one conversation after event ``after``: the log, then live events.
        It starts with ``reset`` when the client must reload the history first (``reset``, or
        the log no longer holds the events right after ``after``)."""
        with self._subscribed(self._conversations, conversation_id) as (subscriber, topic):
            yield b"retry: %d\n\n" % RETRY_MILLISECONDS
            position = after
            while True:
                logged = await self.read(conversation_id, position)
                if logged and logged[0].seq > position + 1 and position == after:
                    reset = True
                if reset:
                    reset = False
                    seq = logged[0].seq - 1 if logged else position
                    yield frame("reset", {"reason": "events were missed"}, seq)
                for event in logged:
                    data = event_frame(conversation_id, event)
                    position = event.seq
                    if data is not None:
                        yield data
                if len(logged) < PAGE:
                    break
            self._replayed(conversation_id, topic, position)
            while (batches := await subscriber.take()) is not None:
                fresh = []
                for batch in batches:
                    first_seq = batch.frames[0][0]
                    if first_seq == 0 or first_seq > position:
                        # Unsequenced (a heartbeat, a deletion) or wholly new: as it is.
                        fresh.append(batch.data)
                        position = max(position, batch.frames[-1][0])
                        continue
                    for seq, data in batch.frames:  # it overlaps the replay
                        if seq > position:
                            position = seq
                            fresh.append(data)
                if fresh:
                    yield b"".join(fresh)

    # -- owners -------------------------------------------------------------------------------

    def _owner_changed(self, key: str, conversation_id: UUID, kind: str) -> None:
        topic = self._owners.get(key)
        if topic is None:
            return
        previous = topic.pending.get(conversation_id)
        # A creation stays one when the conversation changes again before it is read.
        topic.pending[conversation_id] = "n" if previous == "n" and kind == "c" else kind
        if not topic.reading:
            topic.reading = True
            self._spawn(lambda: self._read_owner(key, topic))

    async def _read_owner(self, key: str, topic: Topic) -> None:
        try:
            while topic.pending:
                conversation_id, kind = next(iter(topic.pending.items()))
                del topic.pending[conversation_id]
                data = await self._owner_frame(key, conversation_id, kind)
                if data is not None:
                    batch = Batch.of((0, data))
                    for subscriber in list(topic.subscribers):
                        subscriber.give(batch)
        except Exception:
            log.exception("live conversation changes of an owner could not be read")
            for subscriber in topic.subscribers:
                subscriber.close()
        finally:
            topic.reading = False

    async def _owner_frame(self, key: str, conversation_id: UUID, kind: str) -> bytes | None:
        if kind in ("d", "m-"):
            return frame("conversation.deleted", {"id": conversation_id})
        async with checked_out(self._pool, self._settings.pool_acquire_timeout) as conn:
            conversation = await events.owned_conversation(
                conn, conversation_id=conversation_id, owner_key=key
            )
        if conversation is None:
            return None
        return frame(
            "conversation.created" if kind in ("n", "m+") else "conversation.updated", conversation
        )

    async def owner_frames(self, key: str) -> AsyncIterator[bytes]:
        with self._subscribed(self._owners, key) as (subscriber, _topic):
            yield b"retry: %d\n\n" % RETRY_MILLISECONDS
            yield frame("ready", {})
            while (batches := await subscriber.take()) is not None:
                yield b"".join(batch.data for batch in batches)


# -- the operations the HTTP layer calls ---------------------------------------------------------


def parse_position(value: str | None, field_name: str) -> int | None:
    """A Last-Event-ID or ``after``: an event seq."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise InvalidInput("an event id is a seq: a whole number from 0", field=field_name)
    return int(value)


async def open_conversation(
    conn: Connection, principal: Principal, ref: ConversationRef, after: int | None
) -> tuple[UUID, int, bool]:
    """(the conversation's id, where its stream starts, whether the client must reload first).
    Without a position the stream starts at the conversation's newest event; a position the
    log no longer holds (pruned), or never held (a stale id), also asks for a reset."""
    scope = principal.scope()
    conversation_id = await find(conn, ref, scope)
    newest = (
        None
        if conversation_id is None
        else await events.position(conn, conversation_id=conversation_id, scope=scope)
    )
    if conversation_id is None or newest is None:
        raise conversation_not_found(ref)
    if after is None:
        return conversation_id, newest, False
    if after > newest:
        return conversation_id, newest, True
    return conversation_id, after, False
