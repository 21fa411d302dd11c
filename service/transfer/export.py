"""``chatkeep export``: everything stored (or one user's, or one conversation's) as NDJSON on a
stream, from one consistent snapshot, in constant memory: server-side cursors for every row, a
file's bytes read a few chunks at a time and written as they come."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import BinaryIO
from uuid import UUID

from service.db.pool import Connection
from service.store import transfer
from service.transfer import ndjson

# Bytes gathered per write() call.
FLUSH_BYTES = 1024 * 1024


class _Writer:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.buffer = bytearray()

    def line(self, record: ndjson.Line) -> None:
        ndjson.encoder.encode_into(record, self.buffer, len(self.buffer))
        self.buffer += b"\n"
        if len(self.buffer) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        self.out.write(self.buffer)
        self.buffer.clear()


async def export(
    conn: Connection, out: BinaryIO, *, user_id: str | None, conversation_id: UUID | None
) -> ndjson.End:
    writer = _Writer(out)
    writer.line(
        ndjson.Header(
            format=ndjson.FORMAT,
            version=ndjson.VERSION,
            exported_at=datetime.now(UTC),
            user_id=user_id,
            conversation_id=conversation_id,
        )
    )
    end = ndjson.End(conversations=0, messages=0, prompt_versions=0, files=0)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in transfer.export_conversations(
            conn, user_id=user_id, conversation_id=conversation_id
        ):
            visitor_hash = row["visitor_hash"]
            writer.line(
                ndjson.ConversationLine(
                    **{
                        **dict(row.items()),
                        "visitor_hash": bytes(visitor_hash).hex() if visitor_hash else None,
                    }
                )
            )
            end.conversations += 1
            async for message in transfer.export_messages(conn, conversation_id=row["id"]):
                writer.line(ndjson.MessageLine(**dict(message.items())))
                end.messages += 1
            end.files += await _files(conn, writer, row["id"])
        if user_id is None and conversation_id is None:  # prompts belong to no user
            async for version in transfer.export_prompt_versions(conn):
                writer.line(ndjson.PromptVersionLine(**dict(version.items())))
                end.prompt_versions += 1
    writer.line(end)
    writer.flush()
    return end


async def _files(conn: Connection, writer: _Writer, conversation_id: UUID) -> int:
    """The conversation's files, each a file line and its bytes as file_chunk lines; how many."""
    count = 0
    async for file in transfer.export_files(conn, conversation_id=conversation_id):
        fields = dict(file.items())
        blob_id = fields.pop("blob_id")
        writer.line(ndjson.FileLine(**{**fields, "sha256": bytes(fields["sha256"]).hex()}))
        async for data in transfer.export_chunks(conn, blob_id=blob_id):
            writer.line(ndjson.FileChunkLine(file_id=file["id"], data=data))
        count += 1
    return count
