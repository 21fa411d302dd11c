"""Files attached to a conversation: upload, list, metadata, download, delete."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import Response, Stream

from service import cursor, downloads
from service.api.lookups import require_conversation
from service.api.params import AuthenticatedRequest, ConversationId, Cursor, Limit
from service.api.problems import PROBLEM_RESPONSES, problem_response
from service.db import PooledConnection, checked_out
from service.errors import Conflict, NotFound, TooLarge, conversation_not_found
from service.models import FileInfo, FilePage
from service.settings import Settings
from service.store import files
from service.uploads import (
    Upload,
    clean_content_type,
    clean_filename,
    multipart_boundary,
    multipart_file,
    rechunked,
)
from service.validation import page_size

FileId = Annotated[UUID, PathParameter(description="The file's id (a UUID).")]
Filename = Annotated[
    str | None,
    QueryParameter(description="The file's name, for a raw upload (multipart sends its own)."),
]
NewFileId = Annotated[
    UUID | None,
    QueryParameter(
        description="Client-chosen file id: re-sending the same upload returns the stored file."
    ),
]
ANY_MEDIA_TYPE = "*/*"
DOWNLOAD_RESPONSES = {
    206: ResponseSpec(None, description="The requested byte range", media_type=ANY_MEDIA_TYPE),
    304: ResponseSpec(None, description="Unchanged (If-None-Match)", media_type=ANY_MEDIA_TYPE),
    416: problem_response("The Range selects no byte of the file"),
}
# Room for a multipart body's boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


class _AlreadyStored(Exception):
    """The upload repeats a file stored under the same id; undo what it wrote."""

    def __init__(self, stored: FileInfo) -> None:
        self.stored = stored


def _file_not_found(file_id: UUID) -> NotFound:
    return NotFound(f"file {file_id} does not exist", field="file_id")


async def _require_file(
    conn: PooledConnection, conversation_id: UUID, file_id: UUID, request: AuthenticatedRequest
) -> FileInfo:
    found = await files.get(
        conn, conversation_id=conversation_id, file_id=file_id, scope=request.user.scope()
    )
    if found is None:
        raise _file_not_found(file_id)
    return found


def _refuse_announced_size(request: AuthenticatedRequest, limit: int) -> None:
    """A 413 before reading anything when Content-Length already says the file is too big."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise TooLarge(f"the file is over the limit of {limit} bytes", field="file")


async def _store(
    conn: PooledConnection,
    chunks: AsyncIterator[bytes],
    upload: Upload,
    digest: files.Digest,
    *,
    request: AuthenticatedRequest,
    conversation_id: UUID,
    file_id: UUID,
    settings: Settings,
) -> FileInfo:
    """Stream the chunks into a new blob and attach it as a file, all in one transaction: a
    failure anywhere (a 413, a dropped connection) leaves nothing behind."""
    scope = request.user.scope()
    async with conn.transaction():
        blob_id = await files.write_blob(conn, chunks, digest)
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
                field="file",
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


async def _content(
    state: State, conversation_id: UUID, file_id: UUID, first: int, last: int
) -> AsyncIterator[bytes]:
    """The download body. Its own connection: Litestar releases the request's before sending;
    one snapshot, so a delete meanwhile does not cut the file short."""
    settings: Settings = state.settings
    async with (
        checked_out(state.pool, settings.pool_acquire_timeout) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        async for piece in files.read_content(
            conn, conversation_id=conversation_id, file_id=file_id, start=first, end=last
        ):
            yield piece


class FileController(Controller):
    path = "/conversations/{conversation_id:str}/files"
    tags = ("files",)

    # Uploads are streamed and limited by max_file_bytes, not by the JSON body limit.
    @post("/", status_code=201, request_max_body_size=None, responses=PROBLEM_RESPONSES)
    async def upload_file(
        self,
        *,
        conversation_id: ConversationId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
        filename: Filename = None,
        file_id: NewFileId = None,
    ) -> Response[FileInfo]:
        """Attach a file: either multipart/form-data with one part named `file`, or the raw
        bytes as the body with `?filename=` (and the type in Content-Type). Identical content
        is stored once. With `?file_id=`, sending the same file again returns it (200); other
        content under that id is a 409. Over a size limit: 413."""
        settings: Settings = state.settings
        await require_conversation(conn, conversation_id, request.user.scope())
        upload = Upload()
        boundary = multipart_boundary(request.headers.get("content-type", ""))
        pieces: AsyncIterator[bytes]
        if boundary is None:
            upload.filename = clean_filename(filename)
            upload.content_type = clean_content_type(request.headers.get("content-type"))
            _refuse_announced_size(request, settings.max_file_bytes)
            pieces = request.stream()
        else:
            _refuse_announced_size(request, settings.max_file_bytes + MULTIPART_OVERHEAD)
            pieces = multipart_file(request.stream(), boundary, upload)
        chunks = rechunked(pieces, files.CHUNK_SIZE, settings.max_file_bytes)
        digest = files.Digest()
        try:
            created = await _store(
                conn,
                chunks,
                upload,
                digest,
                request=request,
                conversation_id=conversation_id,
                file_id=file_id or uuid.uuid4(),
                settings=settings,
            )
        except _AlreadyStored as repeat:
            stored = repeat.stored
            if (stored.sha256, stored.filename) != (digest.sha256.hex(), upload.filename):
                raise Conflict(f"file id {file_id} is already taken", field="file_id") from None
            return Response(stored, status_code=200)
        return Response(created, status_code=201)

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_files(
        self,
        *,
        conversation_id: ConversationId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        cursor_: Cursor = None,
    ) -> FilePage:
        """The conversation's files, oldest first; pass `next_cursor` back as `cursor` for the
        next page."""
        settings: Settings = state.settings
        size = page_size(limit, settings)
        scope = request.user.scope()
        after_created_at, after_id = cursor.decode(cursor_, start=cursor.START_ASCENDING)
        rows = await files.list_files(
            conn,
            conversation_id=conversation_id,
            scope=scope,
            after_created_at=after_created_at,
            after_id=after_id,
            limit=size + 1,
        )
        if not rows:
            await require_conversation(conn, conversation_id, scope)
        items = rows[:size]
        next_cursor = (
            cursor.encode(items[-1].created_at, items[-1].id) if len(rows) > size else None
        )
        return FilePage(items=items, next_cursor=next_cursor)

    @get("/{file_id:str}", responses=PROBLEM_RESPONSES)
    async def get_file(
        self,
        conversation_id: ConversationId,
        file_id: FileId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> FileInfo:
        """A file's metadata."""
        return await _require_file(conn, conversation_id, file_id, request)

    @get(
        "/{file_id:str}/content",
        # Whatever type the file was uploaded with.
        media_type=ANY_MEDIA_TYPE,
        responses={**PROBLEM_RESPONSES, **DOWNLOAD_RESPONSES},
        response_description="The file's bytes",
    )
    async def download_file(
        self,
        conversation_id: ConversationId,
        file_id: FileId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[bytes] | Stream:
        """The file's bytes, streamed, with its Content-Type, a download Content-Disposition
        and its SHA-256 as ETag. Honours If-None-Match (304), Range (206, one range) and
        If-Range."""
        found = await _require_file(conn, conversation_id, file_id, request)
        if downloads.not_modified(request.headers.get("if-none-match"), found):
            return Response(b"", status_code=304, headers={"ETag": downloads.etag(found)})
        first, last = downloads.byte_range(
            request.headers.get("range"), request.headers.get("if-range"), found
        )
        headers = downloads.headers(found, first, last)
        return Stream(
            _content(state, conversation_id, file_id, first, last),
            status_code=206 if "Content-Range" in headers else 200,
            headers=headers,
            media_type=found.content_type,
        )

    @delete("/{file_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_file(
        self,
        conversation_id: ConversationId,
        file_id: FileId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> None:
        """Delete a file; its bytes go when no other file has the same content."""
        deleted = await files.delete(
            conn, conversation_id=conversation_id, file_id=file_id, scope=request.user.scope()
        )
        if not deleted:
            raise _file_not_found(file_id)
