"""Writes conversations in batches with COPY, skipping those already stored, then verifies each
batch against what PostgreSQL holds.

A batch is one transaction: its conversations are all stored or none is, so a crash leaves each
conversation complete or absent, and re-running the import (which skips the complete ones)
finishes the job. Conversations already present are not written again, only verified. What
belongs to a conversation besides its messages (files) is written in its batch's transaction,
and only for conversations that transaction creates (with_rows).

A source read without the event loop's help (load) is read a batch ahead, in a thread, while
PostgreSQL takes the previous batch: the reading and cleaning cost next to nothing then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from service.db.pool import Connection
from service.store import transfer
from service.transfer.checksum import checksum
from service.transfer.records import Conversation
from service.transfer.report import Report

# A batch closes at whichever comes first: enough messages to amortise the round trips, or
# enough content to keep the importer's memory small.
BATCH_MESSAGES = 20_000
BATCH_BYTES = 32 * 1024 * 1024


def _next_batch(conversations: Iterator[Conversation]) -> list[Conversation]:
    """The next batch's worth of ``conversations`` (the sizes Loader.add closes a batch at);
    empty at the end."""
    batch: list[Conversation] = []
    messages = size = 0
    for conversation in conversations:
        batch.append(conversation)
        messages += len(conversation.messages)
        size += sum(len(message.content) for message in conversation.messages)
        if messages >= BATCH_MESSAGES or size >= BATCH_BYTES:
            break
    return batch


class Loader:
    def __init__(self, conn: Connection, report: Report, *, dry_run: bool) -> None:
        self.conn = conn
        self.report = report
        self.dry_run = dry_run
        self.pending: list[Conversation] = []
        self.pending_messages = 0
        self.pending_bytes = 0

    def _queue(self, conversation: Conversation) -> None:
        self.report.conversations_read += 1
        self.report.messages_read += len(conversation.messages)
        self.pending.append(conversation)
        self.pending_messages += len(conversation.messages)
        self.pending_bytes += sum(len(message.content) for message in conversation.messages)

    def _full(self) -> bool:
        return self.pending_messages >= BATCH_MESSAGES or self.pending_bytes >= BATCH_BYTES

    async def add(self, conversation: Conversation) -> None:
        """Queue the conversation; write the batch when it is full."""
        self._queue(conversation)
        if self._full():
            await self.flush()

    async def load(self, conversations: Iterator[Conversation]) -> None:
        """Write and verify every conversation of ``conversations``, batch by batch, reading the
        next batch in a thread while the previous one is written. ``conversations`` may block;
        it is advanced by one thread at a time, not always the same one. Flushes at the end."""
        reading = asyncio.ensure_future(asyncio.to_thread(_next_batch, conversations))
        try:
            while batch := await reading:
                reading = asyncio.ensure_future(asyncio.to_thread(_next_batch, conversations))
                for conversation in batch:
                    self._queue(conversation)
                await self.flush()
        finally:
            # The source must not be closed under the thread still reading it.
            await asyncio.gather(reading, return_exceptions=True)

    async def flush(self) -> None:
        """Write and verify the pending batch."""
        async with self._batch():
            pass

    @asynccontextmanager
    async def with_rows(self, conversation: Conversation) -> AsyncIterator[bool]:
        """Write the pending batch with ``conversation`` last, and keep its transaction open
        for what belongs to the conversation (its files): yields whether this run creates the
        conversation. Whatever the caller adds commits with the conversation or not at all, so
        a conversation already stored is never one an earlier run left without its files."""
        self._queue(conversation)
        async with self._batch() as created:
            yield conversation.row.id in created

    @asynccontextmanager
    async def _batch(self) -> AsyncIterator[set[UUID]]:
        """Write the pending batch in one transaction, yielding the ids of the conversations
        it creates; verify the batch after the commit."""
        batch, self.pending = self.pending, []
        self.pending_messages = self.pending_bytes = 0
        if not batch:
            yield set()
            return
        async with self.conn.transaction():
            try:
                async with self.conn.transaction():
                    created = await self._write(batch)
            except asyncpg.UniqueViolationError:
                # Someone created one of these conversations since we looked: look again.
                created = await self._write(batch)
            yield created
        self._count(batch, created)
        if not self.dry_run:
            await self._verify(batch)

    async def _write(self, batch: list[Conversation]) -> set[UUID]:
        """The batch's conversations not stored yet, written (unless a dry run); their ids."""
        ids = [conversation.row.id for conversation in batch]
        present = await transfer.existing_conversations(self.conn, conversation_ids=ids)
        new = [conversation for conversation in batch if conversation.row.id not in present]
        await self._free_external_ids(new)
        if new and not self.dry_run:
            await transfer.copy_rows(
                self.conn,
                [conversation.row for conversation in new],
                [message for conversation in new for message in conversation.messages],
            )
        return {conversation.row.id for conversation in new}

    async def _free_external_ids(self, new: list[Conversation]) -> None:
        """Conversations whose external id another conversation of their owner has (stored, or
        earlier in the batch) are written without it (reported): their messages are kept."""
        taken = await transfer.taken_external_ids(
            self.conn, [conversation.row for conversation in new]
        )
        for conversation in new:
            if conversation.row.id in taken:
                self.report.problem(
                    conversation.location,
                    f"external id {conversation.row.external_id!r} is another conversation's "
                    "of the same owner; not kept",
                    "fixed",
                )
                conversation.row.external_id = None

    def _count(self, batch: list[Conversation], created: set[UUID]) -> None:
        new = [conversation for conversation in batch if conversation.row.id in created]
        self.report.conversations_present += len(batch) - len(new)
        self.report.conversations_imported += len(new)
        self.report.messages_imported += sum(len(conversation.messages) for conversation in new)

    async def _verify(self, batch: list[Conversation]) -> None:
        """Counts and checksums in PostgreSQL, after the commit, against the source's."""
        stored = await transfer.checksums(
            self.conn, conversation_ids=[conversation.row.id for conversation in batch]
        )
        for conversation in batch:
            expected = (len(conversation.messages), checksum(conversation.messages))
            found = stored.get(conversation.row.id)
            self.report.conversations_verified += 1
            if found is None:
                self.report.mismatch(conversation.location, "conversation is not in PostgreSQL")
            elif found != expected:
                self.report.mismatch(
                    conversation.location,
                    f"conversation {conversation.row.id}: PostgreSQL has {found[0]} messages "
                    f"(checksum {found[1]}), the source {expected[0]} ({expected[1]})",
                )
