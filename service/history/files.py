"""Files attached to a conversation: upload (with its limits), list, read, download, delete.

``upload`` is the one way bytes become a file: the upload endpoint and the importers both call
it, so deduplication, the per-file and per-conversation limits and retry-safe ids hold for both.
Uploads and downloads take a database connection only while they talk to the database, never
while they wait for the client (``connect`` gives one for a block: a pool checkout, or the
importer's own connection).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from uuid import UUID

from service.core import cursor
from service.core.attachments import FILE_FIELD, Upload
from service.core.errors import Conflict, NotFound, TooLarge, conversation_not_found
from service.core.principal import Principal
from service.core.schemas import FileInfo, FilePage
from service.core.settings import Settings
from service.core.validation import page_size
from service.db.pool import Connection
from service.history.conversations import check_quota, require, usage_of
from service.history.spool import spooled
from service.store import files
from service.store.files import CHUNKS_PER_READ, Download

# A database connection for the length of a block.
Connect = Callable[[], AbstractAsyncContextManager[Connection]]


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
        after = await usage_of(conn, conversation_id, scope)
        check_quota(after, settings, new_conversation=False, grew=True)
        return created


async def upload(
    connect: Connect,
    principal: Principal,
    conversation_id: UUID,
    *,
    file_id: UUID | None,
    pieces: AsyncIterable[bytes],
    upload: Upload,
    settings: Settings,
) -> tuple[FileInfo, bool]:
    """(the file, whether this call stored it). ``pieces`` (of any size) may fill in
    ``upload`` as they are read. Sending the same content and name again under ``file_id``
    returns the stored file; other content under that id is a Conflict.

    The conversation is checked first (a missing one is refused before any byte is read), then
    the whole body is read to a temporary file with no connection held, then stored in one
    transaction."""
    async with connect() as conn:
        await require(conn, conversation_id, principal.scope())
    received = spooled(
        _bounded(pieces, settings),
        idle_seconds=settings.upload_idle_seconds,
        deadline_seconds=settings.upload_deadline_seconds,
    )
    digest = files.Digest()
    async with received as body, connect() as conn:
        try:
            created = await _store(
                conn,
                principal,
                conversation_id,
                file_id=file_id or uuid.uuid4(),
                pieces=body.pieces(),
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


async def open_download(
    conn: Connection, principal: Principal, conversation_id: UUID, file_id: UUID
) -> Download:
    """The file and where its bytes are, for ``content``."""
    found = await files.get_for_download(
        conn, conversation_id=conversation_id, file_id=file_id, scope=principal.scope()
    )
    if found is None:
        raise _file_not_found(file_id)
    return found


async def content(
    connect: Connect, download: Download, *, first: int, last: int
) -> AsyncIterator[bytes]:
    """Bytes ``first..last`` of the file ``open_download`` found: exactly the bytes its
    metadata describes, since they are read from its sealed blob, CHUNKS_PER_READ chunks per
    connection checkout (handed back before the client is sent them). If the file is deleted
    meanwhile (its blob with it), the download stops short with an error rather than end as if
    complete."""
    size = download.chunk_size
    first_chunk, last_chunk = first // size, last // size
    for batch_first in range(first_chunk, last_chunk + 1, CHUNKS_PER_READ):
        batch_last = min(batch_first + CHUNKS_PER_READ - 1, last_chunk)
        async with connect() as conn:
            chunks = await files.read_chunks(
                conn, blob_id=download.blob_id, first=batch_first, last=batch_last
            )
        if len(chunks) != batch_last - batch_first + 1:
            raise NotFound(
                f"file {download.file.id} was deleted during the download", field="file_id"
            )
        for n, data in enumerate(chunks, start=batch_first):
            offset = n * size
            yield bytes(data[max(first - offset, 0) : last - offset + 1])


async def delete(
    conn: Connection, principal: Principal, conversation_id: UUID, file_id: UUID
) -> None:
    """The file; its bytes go (by trigger) when no other file has the same content."""
    deleted = await files.delete(
        conn, conversation_id=conversation_id, file_id=file_id, scope=principal.scope()
    )
    if not deleted:
        raise _file_not_found(file_id)
