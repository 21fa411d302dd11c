"""Files attached to a conversation: upload (with its limits), list, read, download, delete.

``upload`` is the one way bytes become a file: the upload endpoint and the importers both call
it, so deduplication, the per-file and per-conversation limits and retry-safe ids hold for both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from uuid import UUID

import asyncpg

from service.core import cursor
from service.core.attachments import FILE_FIELD, Upload
from service.core.errors import Conflict, NotFound, TooLarge, conversation_not_found
from service.core.principal import Principal
from service.core.schemas import FileInfo, FilePage
from service.core.settings import Settings
from service.core.validation import page_size
from service.db.pool import Connection, checked_out
from service.history.conversations import require
from service.store import files


def _file_not_found(file_id: UUID) -> NotFound:
    return NotFound(f"file {file_id} does not exist", field="file_id")


class _AlreadyStored(Exception):
    """The upload repeats a file stored under the same id; undo what it wrote."""

    def __init__(self, stored: FileInfo) -> None:
        self.stored = stored


def check_size(size: int, settings: Settings) -> None:
    """TooLarge when a file of ``size`` bytes (or the part of it read so far) is over the
    per-file limit."""
    if size > settings.max_file_bytes:
        raise TooLarge(
            f"the file is over the limit of {settings.max_file_bytes} bytes", field=FILE_FIELD
        )


async def _bounded(pieces: AsyncIterable[bytes], settings: Settings) -> AsyncIterator[bytes]:
    """The pieces, until they pass the per-file limit: then TooLarge (and the transaction rolls
    back)."""
    total = 0
    async for piece in pieces:
        total += len(piece)
        check_size(total, settings)
        yield piece


async def _store(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    *,
    file_id: UUID,
    pieces: AsyncIterable[bytes],
    upload: Upload,
    digest: files.Digest,
    settings: Settings,
) -> FileInfo:
    """Stream the pieces into a new blob and attach it as a file, all in one transaction: a
    failure anywhere (a 413, a dropped connection) leaves nothing behind."""
    scope = principal.scope()
    async with conn.transaction():
        blob_id = await files.write_blob(conn, _bounded(pieces, settings), digest)
        used = await files.lock_conversation(conn, conversation_id=conversation_id, scope=scope)
        if used is None:
            raise conversation_not_found(conversation_id)
        stored = await files.get(
            conn, conversation_id=conversation_id, file_id=file_id, scope=scope
        )
        if stored is not None:
            raise _AlreadyStored(stored)
        if used + digest.size > settings.max_conversation_file_bytes:
            raise TooLarge(
                f"the conversation's files would take {used + digest.size} bytes; the limit "
                f"is {settings.max_conversation_file_bytes}",
                field=FILE_FIELD,
            )
        created = await files.attach(
            conn,
            conversation_id=conversation_id,
            file_id=file_id,
            blob_id=blob_id,
            digest=digest,
            filename=upload.filename,
            content_type=upload.content_type,
        )
        assert created is not None  # the conversation is locked and the id was free
        return created


async def upload(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    *,
    file_id: UUID | None,
    pieces: AsyncIterable[bytes],
    upload: Upload,
    settings: Settings,
) -> tuple[FileInfo, bool]:
    """(the file, whether this call stored it). ``pieces`` (of any size) may fill in
    ``upload`` as they are read. Sending the same content and name again under
    ``file_id`` returns the stored file; other content under that id is a Conflict."""
    await require(conn, conversation_id, principal.scope())
    digest = files.Digest()
    try:
        created = await _store(
            conn,
            principal,
            conversation_id,
            file_id=file_id or uuid.uuid4(),
            pieces=pieces,
            upload=upload,
            digest=digest,
            settings=settings,
        )
    except _AlreadyStored as repeat:
        stored = repeat.stored
        if (stored.sha256, stored.filename) != (digest.sha256.hex(), upload.filename):
            raise Conflict(f"file id {file_id} is already taken", field="file_id") from None
        return stored, False
    return created, True


async def find(
    conn: Connection, principal: Principal, conversation_id: UUID, file_id: UUID
) -> FileInfo | None:
    return await files.get(
        conn, conversation_id=conversation_id, file_id=file_id, scope=principal.scope()
    )


async def get(
    conn: Connection, principal: Principal, conversation_id: UUID, file_id: UUID
) -> FileInfo:
    found = await find(conn, principal, conversation_id, file_id)
    if found is None:
        raise _file_not_found(file_id)
    return found


async def list_page(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    *,
    limit: int | None,
    page_cursor: str | None,
    settings: Settings,
) -> FilePage:
    """Oldest first, from ``page_cursor`` (a previous page's next_cursor) on."""
    size = page_size(limit, settings)
    scope = principal.scope()
    after_created_at, after_id = cursor.decode(page_cursor, start=cursor.START_ASCENDING)
    rows = await files.list_files(
        conn,
        conversation_id=conversation_id,
        scope=scope,
        after_created_at=after_created_at,
        after_id=after_id,
        limit=size + 1,
    )
    if not rows:
        await require(conn, conversation_id, scope)
    items = rows[:size]
    next_cursor = cursor.encode(items[-1].created_at, items[-1].id) if len(rows) > size else None
    return FilePage(items=items, next_cursor=next_cursor)


async def content(
    pool: asyncpg.Pool, wait: float, *, conversation_id: UUID, file_id: UUID, first: int, last: int
) -> AsyncIterator[bytes]:
    """Bytes ``first..last`` of a file the caller was allowed to read (``get``). Its own
    connection, taken from ``pool`` within ``wait`` seconds, since a streamed response outlives
    the request's; one snapshot, so a delete meanwhile does not cut the file short."""
    async with (
        checked_out(pool, wait) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        async for piece in files.read_content(
            conn, conversation_id=conversation_id, file_id=file_id, start=first, end=last
        ):
            yield piece


async def delete(
    conn: Connection, principal: Principal, conversation_id: UUID, file_id: UUID
) -> None:
    """The file; its bytes go (by trigger) when no other file has the same content."""
    deleted = await files.delete(
        conn, conversation_id=conversation_id, file_id=file_id, scope=principal.scope()
    )
    if not deleted:
        raise _file_not_found(file_id)
