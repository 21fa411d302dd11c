"""``chatkeep export``: everything stored (or one user's, or one conversation's) as NDJSON on a
stream, from one consistent snapshot, in constant memory: server-side cursors for every row, a
file's bytes read a few chunks at a time and written as they come."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import BinaryIO
from uuid import UUID

from service.db.pool import Connection
from service.history.files import Connect
from service.store import transfer
from service.transfer import counters, ndjson

# Bytes gathered per write() call.
FLUSH_BYTES = 1024 * 1024


class _Buffer:
    """NDJSON lines gathered until about FLUSH_BYTES are ready to be handed on."""

    def __init__(self) -> None:
        self.data = bytearray()

    def line(self, record: ndjson.Line) -> None:
        ndjson.encoder.encode_into(record, self.data, len(self.data))
        self.data += b"\n"

    @property
    def full(self) -> bool:
        return len(self.data) >= FLUSH_BYTES

    def take(self) -> bytes:
        taken = bytes(self.data)
        self.data.clear()
        return taken


async def export(
    conn: Connection, out: BinaryIO, *, user_id: str | None, conversation_id: UUID | None
) -> ndjson.End:
    """Write the export to ``out``; its counts."""
    end = new_end()
    async for chunk in chunks(conn, end, user_id=user_id, conversation_id=conversation_id):
        out.write(chunk)
    return end


async def user_export(connect: Connect, user_id: str) -> AsyncIterator[bytes]:
    """One user's export (``GET /v1/users/{user_id}/export``): a connection is taken when the
    first chunk is asked for and held until the last, for the snapshot's transaction."""
    end = new_end()
    async with connect() as conn:
        async for chunk in chunks(conn, end, user_id=user_id, conversation_id=None):
            yield chunk
    counters.count_export(end)


def new_end() -> ndjson.End:
    return ndjson.End(conversations=0, messages=0, prompt_versions=0, files=0)


async def chunks(
    conn: Connection, end: ndjson.End, *, user_id: str | None, conversation_id: UUID | None
) -> AsyncIterator[bytes]:
    """The export as chunks of about FLUSH_BYTES (a consumer that waits between them, such as
    an HTTP client, holds back the reading: memory stays constant); counts into ``end``."""
    buffer = _Buffer()
    buffer.line(
        ndjson.Header(
            format=ndjson.FORMAT,
            version=ndjson.VERSION,
            exported_at=datetime.now(UTC),
            user_id=user_id,
            conversation_id=conversation_id,
        )
    )
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in transfer.export_conversations(
            conn, user_id=user_id, conversation_id=conversation_id
        ):
            visitor_hash = row["visitor_hash"]
            buffer.line(
                ndjson.ConversationLine(
                    **{
                        **dict(row.items()),
                        "visitor_hash": bytes(visitor_hash).hex() if visitor_hash else None,
                    }
                )
            )
            end.conversations += 1
            async for message in transfer.export_messages(conn, conversation_id=row["id"]):
                buffer.line(ndjson.MessageLine(**dict(message.items())))
                end.messages += 1
                if buffer.full:
                    yield buffer.take()
            async for file_line in _files(conn, row["id"]):
                buffer.line(file_line)
                if isinstance(file_line, ndjson.FileLine):
                    end.files += 1
                if buffer.full:
                    yield buffer.take()
        if user_id is None and conversation_id is None:  # prompts belong to no user
            async for version in transfer.export_prompt_versions(conn):
                buffer.line(ndjson.PromptVersionLine(**dict(version.items())))
                end.prompt_versions += 1
                if buffer.full:
                    yield buffer.take()
    buffer.line(end)
    yield buffer.take()


async def _files(
    conn: Connection, conversation_id: UUID
) -> AsyncIterator[ndjson.FileLine | ndjson.FileChunkLine]:
    """The conversation's files, each a file line and its bytes as file_chunk lines."""
    async for file in transfer.export_files(conn, conversation_id=conversation_id):
        fields = dict(file.items())
        blob_id = fields.pop("blob_id")
        yield ndjson.FileLine(**{**fields, "sha256": bytes(fields["sha256"]).hex()})
        async for data in transfer.export_chunks(conn, blob_id=blob_id):
            yield ndjson.FileChunkLine(file_id=file["id"], data=data)
