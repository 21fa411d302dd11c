"""Live updates: each worker's hub of event streams, fed by PostgreSQL notifications.

Writers never talk to subscribers. Triggers (migrations/0012.events.sql) log every change of a
conversation in its transaction and NOTIFY channel ``chatkeep_events`` with ids only; every
worker of every instance LISTENs on its one listener connection (service/db/listener.py). On a
notification a worker reads the new events once, with the rows they name, encodes each as an
SSE frame once, and hands the frame to each of its subscribers of that conversation.

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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.core import metrics
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
# Put in a subscriber's buffer to end its stream.
CLOSE = None

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


class Subscriber:
    def __init__(self, size: int, deadline: float) -> None:
        self.buffer: asyncio.Queue[Frame | None] = asyncio.Queue(size)
        # When the stream ends anyway (events_max_seconds), on the loop's clock.
        self.deadline = deadline
        # Whether it was given anything since the last heartbeat tick.
        self.busy = False

    def give(self, item: Frame) -> None:
        self.busy = True
        try:
            self.buffer.put_nowait(item)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """End the stream as soon as it reads its buffer: what it holds is dropped (the client
        replays it with Last-Event-ID)."""
        while not self.buffer.empty():
            self.buffer.get_nowait()
        self.buffer.put_nowait(CLOSE)


@dataclass(eq=False)
class Topic:
    subscribers: set[Subscriber] = field(default_factory=set)
    # Conversation topics: the last seq handed over (None until the first subscriber replayed);
    # whether a read runs, and whether another notification came meanwhile.
    seq: int | None = None
    reading: bool = False
    again: bool = False
    # Owner topics: conversations changed since the last read, and how ("n", "c", "d", "m-", "m+").
    pending: dict[UUID, str] = field(default_factory=dict)


class Hub:
    """The worker's subscribers, by conversation and by owner."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
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
                        subscriber.give((0, HEARTBEAT))
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
        reset = frame("reset", {"reason": "notifications may have been missed"})
        for topic in self._owners.values():
            for subscriber in topic.subscribers:
                subscriber.give((0, reset))

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
        """Hand the conversation's new events to its subscribers, reading until none is left."""
        try:
            while True:
                topic.again = False
                assert topic.seq is not None
                logged = await self.read(conversation_id, topic.seq)
                for event in logged:
                    topic.seq = event.seq
                    data = event_frame(conversation_id, event)
                    if data is not None:
                        for subscriber in list(topic.subscribers):
                            subscriber.give((event.seq, data))
                if len(logged) < PAGE and not topic.again:
                    return
        except Exception:
            # Its subscribers resume from the log when they reconnect.
            log.exception("live events of conversation %s could not be read", conversation_id)
            for subscriber in topic.subscribers:
                subscriber.close()
        finally:
            topic.reading = False

    def _conversation_deleted(self, conversation_id: UUID) -> None:
        topic = self._conversations.get(conversation_id)
        if topic is None:
            return
        deleted = (0, frame("conversation.deleted", {"id": conversation_id}))
        for subscriber in topic.subscribers:
            subscriber.give(deleted)
            if subscriber.buffer.full():
                subscriber.close()  # a reconnection gets the 404 that says as much
            else:
                subscriber.buffer.put_nowait(CLOSE)

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
            async for frames in self._live(subscriber):
                fresh = []
                for seq, data in frames:
                    if seq == 0 or seq > position:
                        position = max(position, seq)
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
                    for subscriber in list(topic.subscribers):
                        subscriber.give((0, data))
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
            async for frames in self._live(subscriber):
                yield b"".join(data for _seq, data in frames)

    async def _live(self, subscriber: Subscriber) -> AsyncIterator[list[Frame]]:
        """What the hub hands the subscriber (heartbeats included), until it is closed: all that
        waits at once, so a stream that fell behind catches up in few writes."""
        while True:
            item = await subscriber.buffer.get()
            frames: list[Frame] = []
            while item is not None:  # CLOSE
                frames.append(item)
                if subscriber.buffer.empty():
                    break
                item = subscriber.buffer.get_nowait()
            if frames:
                yield frames
            if item is None:
                return


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
