"""Writes conversations in batches with COPY, skipping those already stored, then verifies each
batch against what PostgreSQL holds.

A batch is one transaction: its conversations are all stored or none is, so a crash leaves each
conversation complete or absent, and re-running the import (which skips the complete ones)
finishes the job. Conversations already present are not written again, only verified.
"""

from __future__ import annotations

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


class Loader:
    def __init__(self, conn: Connection, report: Report, *, dry_run: bool) -> None:
        self.conn = conn
        self.report = report
        self.dry_run = dry_run
        self.pending: list[Conversation] = []
        self.pending_messages = 0
        self.pending_bytes = 0

    async def add(self, conversation: Conversation) -> list[Conversation]:
        """Queue the conversation; returns the batch this flushed (empty when none did)."""
        self.report.conversations_read += 1
        self.report.messages_read += len(conversation.messages)
        self.pending.append(conversation)
        self.pending_messages += len(conversation.messages)
        self.pending_bytes += sum(len(message.content) for message in conversation.messages)
        if self.pending_messages >= BATCH_MESSAGES or self.pending_bytes >= BATCH_BYTES:
            return await self.flush()
        return []

    async def flush(self) -> list[Conversation]:
        """Write and verify the pending batch; returns it (stored now or before)."""
        batch, self.pending = self.pending, []
        self.pending_messages = self.pending_bytes = 0
        if not batch:
            return []
        try:
            await self._write(batch)
        except asyncpg.UniqueViolationError:
            # Someone created one of these conversations since we looked: look again.
            await self._write(batch)
        if not self.dry_run:
            await self._verify(batch)
        return batch

    async def _write(self, batch: list[Conversation]) -> None:
        ids = [conversation.row.id for conversation in batch]
        async with self.conn.transaction():
            present = await transfer.existing_conversations(self.conn, conversation_ids=ids)
            new = [conversation for conversation in batch if conversation.row.id not in present]
            if new and not self.dry_run:
                await transfer.copy_rows(
                    self.conn,
                    [conversation.row for conversation in new],
                    [message for conversation in new for message in conversation.messages],
                )
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
