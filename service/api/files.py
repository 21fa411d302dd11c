"""Files attached to a conversation: upload, list, metadata (read, replace), download, delete."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Response, Stream

from service.api import downloads
from service.api.openapi import PROBLEM_RESPONSES, problem_response, stored_again
from service.api.params import (
    AuthenticatedRequest,
    ConnectionDependency,
    ConversationId,
    Cursor,
    Limit,
)
from service.api.uploads import body_bounded, multipart_boundary, multipart_file
from service.core.attachments import (
    FILE_FIELD,
    MAX_FILENAME,
    Upload,
    clean_content_type,
    clean_filename,
)
from service.core.errors import TooLarge
from service.core.refs import parse_conversation_ref
from service.core.schemas import FileInfo, FilePage, FilePatch
from service.core.settings import Settings
from service.db.pool import checked_out
from service.history import files
from service.history.files import Connect

FileId = Annotated[UUID, PathParameter(description="The file's id (a UUID).")]
Filename = Annotated[
    str | None,
    QueryParameter(
        description="The file's name, required for a raw upload (a form's file part has its "
        "own; when sent with a form too, this one names the file). Its last path component is "
        "kept: at most 255 characters, no control characters, a last path component that is "
        "not blank. Described as required: a form sending it is fine.",
        required=True,
        min_length=1,
        max_length=MAX_FILENAME,
    ),
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


def _refuse_announced_size(request: AuthenticatedRequest, limit: int) -> None:
    """A 413 before reading anything when Content-Length already says the file is too big."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise TooLarge(f"the file is over the limit of {limit} bytes", field=FILE_FIELD)


async def _file_pieces(
    request: AuthenticatedRequest, filename: str | None, upload: Upload, settings: Settings
) -> AsyncIterator[bytes]:
    """The file's bytes from the body, raw or multipart, filling in ``upload``. The request's
    headers are checked when the first piece is asked for: after the upload operation has
    checked the conversation, so someone else's is a 404 whatever the headers say."""
    boundary = multipart_boundary(request.headers.get("content-type", ""))
    pieces: AsyncIterator[bytes]
    # With a form, ``?filename=`` is optional; when sent, it names the file.
    named: str | None = None
    if boundary is None:
        upload.filename = clean_filename(filename)
        upload.content_type = clean_content_type(request.headers.get("content-type"))
        # The body is the file: the upload operation bounds it (a 413 naming the file).
        _refuse_announced_size(request, settings.max_file_bytes)
        pieces = request.stream()
    else:
        # Room for the form's fields too (each bounded on its own).
        limit = settings.max_file_bytes + MULTIPART_OVERHEAD + settings.max_metadata_bytes
        _refuse_announced_size(request, limit)
        body = body_bounded(request.stream(), limit)
        pieces = multipart_file(
            body, boundary, upload, max_metadata_bytes=settings.max_metadata_bytes
        )
        named = None if filename is None else clean_filename(filename)
    async for piece in pieces:
        yield piece
    if named is not None:
        upload.filename = named


def _connect(state: State) -> Connect:
    """Pool checkouts for an operation that takes a connection only while it needs one."""
    settings: Settings = state.settings
    return functools.partial(checked_out, state.pool, settings.pool_acquire_timeout)


class FileController(Controller):
    path = "/conversations/{conversation_id:str}/files"
    tags = ("files",)

    # Uploads are streamed and limited by max_file_bytes, not by the JSON body limit.
    @post(
        "/",
        status_code=201,
        request_max_body_size=None,
        responses={
            **PROBLEM_RESPONSES,
            **stored_again(FileInfo, "The same file uploaded again under this file_id"),
            408: problem_response("The body was not received in time"),
        },
    )
    async def upload_file(
        self,
        *,
        conversation_id: ConversationId,
        request: AuthenticatedRequest,
        state: State,
        filename: Filename = None,
        file_id: NewFileId = None,
    ) -> Response[FileInfo]:
        """Attach a file: either multipart/form-data with one part named `file` (and optional
        fields `metadata`, a JSON object describing the file, and `user_id`), or the raw bytes
        as the body with `?filename=` (and the type in Content-Type). A conversation that does
        not exist yet is created, as an append creates it: owned by the user token or visitor
        uploading, or for a key by the form's `user_id` (naming another user than an existing
        conversation's is a 409). Identical content is stored once. With `?file_id=`, sending
        the same file again returns it (200); other content under that id is a 409. Over a size
        limit or quota: 413. The body is received in full before the file is stored."""
        # No pooled connection as a dependency: a slow client must not hold one.
        settings: Settings = state.settings
        upload = Upload()
        pieces = _file_pieces(request, filename, upload, settings)
        stored, created = await files.upload(
            _connect(state),
            request.user,
            parse_conversation_ref(conversation_id),
            file_id=file_id,
            pieces=pieces,
            upload=upload,
            settings=settings,
        )
        return Response(stored, status_code=201 if created else 200)

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_files(
        self,
        *,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        cursor_: Cursor = None,
    ) -> FilePage:
        """The conversation's files, oldest first; pass `next_cursor` back as `cursor` for the
        next page."""
        return await files.list_page(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            limit=limit,
            page_cursor=cursor_,
            settings=state.settings,
        )

    @patch("/{file_id:str}", responses=PROBLEM_RESPONSES)
    async def patch_file(
        self,
        *,
        conversation_id: ConversationId,
        file_id: FileId,
        data: JSONBody[FilePatch],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> FileInfo:
        """Replace a file's metadata."""
        return await files.set_metadata(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            file_id,
            patch=data,
            settings=state.settings,
        )

    @get("/{file_id:str}", responses=PROBLEM_RESPONSES)
    async def get_file(
        self,
        conversation_id: ConversationId,
        file_id: FileId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> FileInfo:
        """A file's metadata."""
        return await files.get(conn, request.user, parse_conversation_ref(conversation_id), file_id)

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
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[bytes] | Stream:
        """The file's bytes, streamed, with its Content-Type, a download Content-Disposition
        and its SHA-256 as ETag. Honours If-None-Match (304), Range (206, one range) and
        If-Range."""
        download = await files.open_download(
            conn, request.user, parse_conversation_ref(conversation_id), file_id
        )
        found = download.file
        if downloads.not_modified(request.headers.get("if-none-match"), found):
            return Response(b"", status_code=304, headers={"ETag": downloads.etag(found)})
        first, last = downloads.byte_range(
            request.headers.get("range"), request.headers.get("if-range"), found
        )
        headers = downloads.headers(found, first, last)
        # The request's connection is handed back before the body is sent; the content takes
        # one for each few chunks, never while the client reads.
        content = files.content(_connect(state), download, first=first, last=last)
        return Stream(
            content,
            status_code=206 if "Content-Range" in headers else 200,
            headers=headers,
            media_type=found.content_type,
        )

    @delete("/{file_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_file(
        self,
        conversation_id: ConversationId,
        file_id: FileId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> None:
        """Delete a file; its bytes go when no other file has the same content."""
        await files.delete(conn, request.user, parse_conversation_ref(conversation_id), file_id)
