"""Reading an upload from the request body, in constant memory.

Two shapes are accepted: a raw body (the file's bytes, its type in Content-Type, its name in
``?filename=``), and multipart/form-data with one part named ``file`` (as a browser form or
``curl -F file=@path`` sends it). Either way the bytes arrive as a stream of pieces, never as
one buffer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import multipart

from service.errors import InvalidInput, TooLarge

FILE_FIELD = "file"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_FILENAME = 255
# type/subtype with optional parameters, as RFC 9110 allows it (tokens, no control characters).
_CONTENT_TYPE = re.compile(r"^[\w!#$&^.+-]+/[\w!#$&^.+-]+(\s*;[^\x00-\x1f\x7f]*)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Upload:
    """What the request says about the file, checked; filled in as the body is read (a
    multipart part's headers come before its bytes)."""

    filename: str = ""
    content_type: str = DEFAULT_CONTENT_TYPE


def clean_filename(name: str | None) -> str:
    """The name to store: the last path component (clients send full paths); refuses names
    that cannot be put in a Content-Disposition header safely."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base:
        raise InvalidInput("a file name is required", field="filename")
    if len(base) > MAX_FILENAME:
        raise InvalidInput(f"longer than {MAX_FILENAME} characters", field="filename")
    if _CONTROL.search(base):
        raise InvalidInput("control characters are not allowed", field="filename")
    return base


def clean_content_type(value: str | None) -> str:
    if not value:
        return DEFAULT_CONTENT_TYPE
    value = value.strip()
    if len(value) > MAX_FILENAME or not _CONTENT_TYPE.match(value):
        raise InvalidInput(f"not a media type: {value[:50]!r}", field="content_type")
    return value


def multipart_boundary(content_type: str) -> str | None:
    """The boundary when the body is multipart/form-data, else None (a raw upload)."""
    kind, options = multipart.parse_options_header(content_type)
    if kind.lower() != "multipart/form-data":
        return None
    boundary: str | None = options.get("boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data without a boundary", field="Content-Type")
    return boundary


async def multipart_file(
    body: AsyncIterator[bytes], boundary: str, upload: Upload
) -> AsyncIterator[bytes]:
    """The bytes of the one ``file`` part; fills ``upload`` from the part's headers. Any other
    part, a second file or a broken stream is a 4xx naming it."""
    parser = multipart.PushMultipartParser(boundary, max_segment_count=1)
    seen_file = False
    try:
        async for piece in body:
            if not piece:  # an empty piece would tell the parser the body has ended
                continue
            for event in parser.parse(piece):
                if isinstance(event, multipart.MultipartSegment):
                    if event.name != FILE_FIELD:
                        raise InvalidInput(
                            f"unexpected form field {event.name!r}; send the file as 'file'",
                            field=event.name,
                        )
                    seen_file = True
                    # Checked before any byte is stored.
                    upload.filename = clean_filename(event.filename)
                    upload.content_type = clean_content_type(event.content_type)
                elif event:
                    yield event
            if parser.closed:
                break
        parser.close()
    except multipart.ParserLimitReached as exc:
        raise InvalidInput("send exactly one part, named 'file'", field=FILE_FIELD) from exc
    except multipart.MultipartError as exc:
        raise InvalidInput(f"malformed multipart body: {exc}", field="body") from exc
    if not seen_file:
        raise InvalidInput("the form has no 'file' part", field=FILE_FIELD)


async def rechunked(
    pieces: AsyncIterator[bytes], chunk_size: int, limit: int
) -> AsyncIterator[bytes]:
    """The stream cut into ``chunk_size`` chunks (the last may be shorter; none for an empty
    stream); a 413 as soon as it passes ``limit`` bytes."""
    buffer = bytearray()
    total = 0
    async for piece in pieces:
        total += len(piece)
        if total > limit:
            raise TooLarge(f"the file is over the limit of {limit} bytes", field=FILE_FIELD)
        buffer += piece
        while len(buffer) >= chunk_size:
            yield bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
    if buffer:
        yield bytes(buffer)
