"""Files attached to a conversation: upload (with its limits), list, read, change metadata,
download, delete.

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
from service.core.principal import Principal, Scope
from service.core.refs import ConversationRef, ExternalRef
from service.core.schemas import FileInfo, FilePage, FilePatch
from service.core.settings import Settings
from service.core.validation import check_metadata, page_size, reject_nul
from service.db.pool import Connection
from service.history.conversations import check_quota, find, require, resolve, usage_of
from service.history.spool import spooled
from service.store import conversations, files
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


class _CreatedMeanwhile(Exception):
    """The conversation came into being while this upload wrote its blob; start again."""


async def _lock_or_create(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    *,
    blob_id: int,
    digest: files.Digest,
    upload: Upload,
    may_create: bool,
    external_id: str | None,
) -> tuple[files.LockedForFile, int, bool]:
    """(the locked conversation, the blob keeping the content, whether this created the
    conversation). Every upload and delete locks the conversation, then the content, then its
    owner's usage row (sql/files.sql). Creating a conversation takes the owner's usage row
    (its count), so a new one is created after the content is settled: nobody else can hold a
    conversation that does not exist yet, and the order with the usage row stays the same."""
    scope = principal.scope()
    locked = await files.lock_conversation(conn, conversation_id=conversation_id, scope=scope)
    if locked is None and not may_create:
        raise conversation_not_found(conversation_id)
    kept = await files.keep_content(conn, blob_id=blob_id, digest=digest)
    if locked is not None:
        return locked, kept, False
    user_id, visitor_hash = principal.new_conversation_owner(upload.user_id, field="user_id")
    if not await conversations.create_if_missing(
        conn,
        conversation_id=conversation_id,
        user_id=user_id,
        visitor_hash=visitor_hash,
        external_id=external_id,
    ):
        # Locking it now would take it after the content: undo, and lock it first.
        raise _CreatedMeanwhile
    locked = await files.lock_conversation(conn, conversation_id=conversation_id, scope=scope)
    assert locked is not None  # created by this transaction, for this caller
    return locked, kept, True


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
    may_create: bool,
    external_id: str | None,
) -> FileInfo:
    """Stream the pieces into a new blob and attach it as a file, creating the conversation
    when it is missing and ``may_create``, all in one transaction: a failure anywhere (a 413,
    a dropped connection) leaves nothing behind."""
    scope = principal.scope()
    async with conn.transaction():
        blob_id = await files.write_blob(conn, _bounded(pieces, settings), digest)
        locked, kept, created = await _lock_or_create(
            conn,
            principal,
            conversation_id,
            blob_id=blob_id,
            digest=digest,
            upload=upload,
            may_create=may_create,
            external_id=external_id,
        )
        if upload.user_id is not None and upload.user_id != locked.user_id:
            # As for an append: naming another user than the conversation's is a conflict,
            # never a silent upload to someone else's conversation.
            raise Conflict(
                f"conversation {conversation_id} does not belong to user {upload.user_id!r}",
                field="user_id",
            )
        stored = await files.get(
            conn, conversation_id=conversation_id, file_id=file_id, scope=scope
        )
        if stored is not None:
            raise _AlreadyStored(stored)
        if locked.used + digest.size > settings.max_conversation_file_bytes:
            raise TooLarge(
                f"the conversation's files would take {locked.used + digest.size} bytes; the "
                f"limit is {settings.max_conversation_file_bytes}",
                field=FILE_FIELD,
            )
        attached = await files.attach(
            conn,
            conversation_id=conversation_id,
            file_id=file_id,
            blob_id=kept,
            digest=digest,
            filename=upload.filename,
            content_type=upload.content_type,
            metadata=upload.metadata,
        )
        assert attached is not None  # the conversation is locked and the id was free
        if locked.owned:
            # After the insert, whose triggers hold the owner's usage row until commit.
            after = await usage_of(conn, conversation_id, scope)
            check_quota(after, settings, new_conversation=created, grew=True)
        return attached


async def _target(
    conn: Connection, principal: Principal, ref: ConversationRef, user_id: str | None
) -> tuple[UUID, str | None]:
    """(the conversation an upload goes to, the external id to create it with when new)."""
    if not isinstance(ref, ExternalRef):
        return ref, None
    found = await find(conn, ref, principal.scope(), user_id=user_id)
    return (found, None) if found is not None else (uuid.uuid4(), ref.external_id)


async def upload(
    connect: Connect,
    principal: Principal,
    ref: ConversationRef,
    *,
    file_id: UUID | None,
    pieces: AsyncIterable[bytes],
    upload: Upload,
    settings: Settings,
) -> tuple[FileInfo, bool]:
    """(the file, whether this call stored it). ``pieces`` (of any size) may fill in
    ``upload`` as they are read. Sending the same content and name again under ``file_id``
    returns the stored file; other content under that id is a Conflict. A conversation that
    does not exist yet is created, as an append creates it (owned by the caller, or by
    ``upload.user_id`` for a key).

    Someone else's conversation is refused before any byte is read; then the whole body is
    read to a temporary file with no connection held, then stored in one transaction."""
    if not isinstance(ref, ExternalRef):
        # An external id names the caller's own conversation, or one to create: nothing to
        # refuse before the body (a key's user_id may come after the file).
        async with connect() as conn:
            await _refuse_others(conn, ref, principal.scope())
    received = spooled(
        _bounded(pieces, settings),
        idle_seconds=settings.upload_idle_seconds,
        deadline_seconds=settings.upload_deadline_seconds,
    )
    file_id = file_id or uuid.uuid4()
    async with received as body, connect() as conn:
        # The form's fields may follow the file: checked once the body is in.
        check_metadata(upload.metadata, "metadata", settings)
        reject_nul(upload.user_id, "user_id")
        for may_create in (True, False):
            digest = files.Digest()
            conversation_id, external_id = await _target(conn, principal, ref, upload.user_id)
            try:
                created = await _store(
                    conn,
                    principal,
                    conversation_id,
                    file_id=file_id,
                    pieces=body.pieces(),
                    upload=upload,
                    digest=digest,
                    settings=settings,
                    may_create=may_create,
                    external_id=external_id,
                )
            except _CreatedMeanwhile:
                continue
            except _AlreadyStored as repeat:
                stored = repeat.stored
                if (stored.sha256, stored.filename) != (digest.sha256.hex(), upload.filename):
                    raise Conflict(f"file id {file_id} is already taken", field="file_id") from None
                return stored, False
            return created, True
    raise AssertionError("the second attempt never creates")  # pragma: no cover


async def _refuse_others(conn: Connection, conversation_id: UUID, scope: Scope) -> None:
    """NotFound for someone else's conversation; a missing one is for the upload to create."""
    mine = await files.upload_target(conn, conversation_id=conversation_id, scope=scope)
    if mine is False:
        raise conversation_not_found(conversation_id)


async def find_file(
    conn: Connection, principal: Principal, conversation_id: UUID, file_id: UUID
) -> FileInfo | None:
    return await files.get(
        conn, conversation_id=conversation_id, file_id=file_id, scope=principal.scope()
    )


async def get(
    conn: Connection, principal: Principal, ref: ConversationRef, file_id: UUID
) -> FileInfo:
    conversation_id = await resolve(conn, ref, principal.scope())
    found = await find_file(conn, principal, conversation_id, file_id)
    if found is None:
        raise _file_not_found(file_id)
    return found


async def list_page(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    *,
    limit: int | None,
    page_cursor: str | None,
    settings: Settings,
) -> FilePage:
    """Oldest first, from ``page_cursor`` (a previous page's next_cursor) on."""
    size = page_size(limit, settings)
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
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


async def set_metadata(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    file_id: UUID,
    *,
    patch: FilePatch,
    settings: Settings,
) -> FileInfo:
    """The file with its metadata replaced."""
    check_metadata(patch.metadata, "metadata", settings)
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    updated = await files.set_metadata(
        conn, conversation_id=conversation_id, file_id=file_id, scope=scope, metadata=patch.metadata
    )
    if updated is None:
        await require(conn, conversation_id, scope)
        raise _file_not_found(file_id)
    return updated


async def open_download(
    conn: Connection, principal: Principal, ref: ConversationRef, file_id: UUID
) -> Download:
    """The file and where its bytes are, for ``content``."""
    conversation_id = await resolve(conn, ref, principal.scope())
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
    conn: Connection, principal: Principal, ref: ConversationRef, file_id: UUID
) -> None:
    """The file; its bytes go (by trigger) when no other file has the same content."""
    conversation_id = await resolve(conn, ref, principal.scope())
    deleted = await files.delete(
        conn, conversation_id=conversation_id, file_id=file_id, scope=principal.scope()
    )
    if not deleted:
        raise _file_not_found(file_id)
