"""Bulk reads and writes of the importers and the exporter (queries in sql/transfer.sql): COPY
of whole batches, read-back checksums, and server-side cursors over everything stored.

Rows become COPY records by position (much cheaper than by name), so the row Structs below list
their fields in column order; the column lists are taken from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from service.db.pool import Connection
from service.db.queries import queries
from service.store.files import CHUNKS_PER_READ


class MessageRow(msgspec.Struct, array_like=True):
    """A message as COPY writes it; field order is the column order."""

    conversation_id: UUID
    seq: int
    id: UUID
    role: str
    content: str
    topic: str | None
    # JSON text of an object, written to jsonb as it is.
    metadata: msgspec.Raw
    created_at: datetime
    # The source's own id of the message, unique within its conversation.
    external_id: str | None = None
    # None: estimated on insert (the trigger messages_estimate_tokens).
    tokens: int | None = None


class ConversationRow(msgspec.Struct, array_like=True):
    """A conversation as COPY writes it; field order is the column order."""

    id: UUID
    user_id: str | None
    # SHA-256 of an anonymous visitor's session id.
    visitor_hash: bytes | None
    title: str | None
    metadata: msgspec.Raw
    message_count: int
    last_seq: int
    created_at: datetime
    updated_at: datetime
    # The source's own id of the conversation, unique within its owner (taken_external_ids).
    external_id: str | None = None
    version: int = 1
    expires_at: datetime | None = None


CONVERSATION_COLUMNS = ConversationRow.__struct_fields__
MESSAGE_COLUMNS = MessageRow.__struct_fields__


async def existing_conversations(
    conn: Connection, *, conversation_ids: Sequence[UUID]
) -> set[UUID]:
    rows = await queries().many(
        conn, "transfer.existing_conversations", conversation_ids=conversation_ids
    )
    return {row["id"] for row in rows}


async def taken_external_ids(
    conn: Connection, conversations: Sequence[ConversationRow]
) -> set[UUID]:
    """Which of ``conversations`` (not stored yet) cannot have their external_id: another
    conversation of the same owner has it, stored or earlier in ``conversations``."""
    named = [row for row in conversations if row.external_id is not None]
    if not named:
        return set()
    rows = await queries().many(
        conn,
        "transfer.taken_external_ids",
        conversation_ids=[row.id for row in named],
        external_ids=[row.external_id for row in named],
        user_ids=[row.user_id for row in named],
        visitor_hashes=[row.visitor_hash for row in named],
    )
    return {row["id"] for row in rows}


async def copy_rows(
    conn: Connection,
    conversations: Iterable[ConversationRow],
    messages: Iterable[MessageRow],
) -> None:
    """COPY the conversations, then their messages. Run in a transaction: all or none."""
    await conn.copy_records_to_table(
        "conversations",
        records=[msgspec.structs.astuple(row) for row in conversations],
        columns=CONVERSATION_COLUMNS,
    )
    await conn.copy_records_to_table(
        "messages",
        records=[msgspec.structs.astuple(row) for row in messages],
        columns=MESSAGE_COLUMNS,
    )


async def checksums(
    conn: Connection, *, conversation_ids: Sequence[UUID]
) -> dict[UUID, tuple[int, str]]:
    """(message rows, checksum) of each of the conversations that exists."""
    rows = await queries().many(conn, "transfer.checksums", conversation_ids=conversation_ids)
    return {row["id"]: (row["messages"], row["checksum"]) for row in rows}


def export_conversations(
    conn: Connection, *, user_id: str | None, conversation_id: UUID | None
) -> AsyncIterator[asyncpg.Record]:
    """Every conversation (or one user's, or one), by id, through a cursor: in a transaction."""
    return queries().iterate(
        conn,
        "transfer.export_conversations",
        user_id=user_id,
        conversation_id=conversation_id,
    )


def export_messages(conn: Connection, *, conversation_id: UUID) -> AsyncIterator[asyncpg.Record]:
    """A conversation's messages in seq order, through a cursor: in a transaction."""
    return queries().iterate(conn, "transfer.export_messages", conversation_id=conversation_id)


def export_files(conn: Connection, *, conversation_id: UUID) -> AsyncIterator[asyncpg.Record]:
    """A conversation's files, oldest first, through a cursor: in a transaction."""
    return queries().iterate(conn, "transfer.export_files", conversation_id=conversation_id)


async def export_chunks(conn: Connection, *, blob_id: int) -> AsyncIterator[bytes]:
    """A blob's bytes, one stored chunk at a time, through a cursor holding a few of them: in a
    transaction. Constant memory whatever the blob's size."""
    async for (data,) in queries().iterate(
        conn, "transfer.export_chunks", prefetch=CHUNKS_PER_READ, blob_id=blob_id
    ):
        yield data


def export_prompt_versions(conn: Connection) -> AsyncIterator[asyncpg.Record]:
    """Every version of every prompt, through a cursor: in a transaction."""
    return queries().iterate(conn, "transfer.export_prompt_versions")


async def import_prompt_version(
    conn: Connection,
    *,
    name: str,
    version: int,
    content: str,
    metadata: msgspec.Raw,
    created_at: datetime,
    retired: bool,
) -> bool:
    """Version ``version`` of a prompt exactly as exported; whether it was new. Run in a
    transaction."""
    await queries().exec(
        conn, "transfer.import_prompt", name=name, version=version, retired=retired
    )
    added = await queries().execrows(
        conn,
        "transfer.import_prompt_version",
        name=name,
        version=version,
        content=content,
        metadata=metadata,
        created_at=created_at,
    )
    return added > 0


async def restore_file(
    conn: Connection,
    *,
    conversation_id: UUID,
    file_id: UUID,
    created_at: datetime,
    metadata: msgspec.Raw,
) -> None:
    """Give a file just restored the creation time and metadata its export says."""
    await queries().exec(
        conn,
        "transfer.restore_file",
        conversation_id=conversation_id,
        file_id=file_id,
        created_at=created_at,
        metadata=metadata,
    )
