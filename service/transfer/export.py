"""``chatkeep export``: everything stored (or one user's, or one conversation's) as NDJSON on a
stream, from one consistent snapshot, in constant memory (server-side cursors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import BinaryIO
from uuid import UUID

from service.db.pool import Connection
from service.store import transfer
from service.transfer import ndjson

# Lines written per write() call.
FLUSH_EVERY = 1000


class _Writer:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.buffer = bytearray()
        self.lines = 0

    def line(self, record: ndjson.Line) -> None:
        ndjson.encoder.encode_into(record, self.buffer, len(self.buffer))
        self.buffer += b"\n"
        self.lines += 1
        if self.lines % FLUSH_EVERY == 0:
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
    end = ndjson.End(conversations=0, messages=0, prompt_versions=0)
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
        if user_id is None and conversation_id is None:  # prompts belong to no user
            async for version in transfer.export_prompt_versions(conn):
                writer.line(ndjson.PromptVersionLine(**dict(version.items())))
                end.prompt_versions += 1
    writer.line(end)
    writer.flush()
    return end
