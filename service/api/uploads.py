"""Reading an upload from the request body, in constant memory.

Two shapes are accepted: a raw body (the file's bytes, its type in Content-Type, its name in
``?filename=``), and multipart/form-data with one part named ``file`` (as a browser form or
``curl -F file=@path`` sends it). Either way the bytes arrive as a stream of pieces, never as
one buffer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import multipart

from service.core.attachments import FILE_FIELD, Upload, clean_content_type, clean_filename
from service.core.errors import InvalidInput, TooLarge

# Bounds of the multipart envelope around the file: bytes before the first part, and the
# headers of a part (RFC 7578 uses three at most).
MAX_PREAMBLE_BYTES = 64 * 1024
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 4096


def multipart_boundary(content_type: str) -> str | None:
    """The boundary when the body is multipart/form-data, else None (a raw upload)."""
    kind, options = multipart.parse_options_header(content_type)
    if kind.lower() != "multipart/form-data":
        return None
    boundary: str | None = options.get("boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data without a boundary", field="Content-Type")
    return boundary


async def body_bounded(body: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The request body, until it passes ``limit`` bytes: then a 413. Bounds a chunked body,
    which announces no length, like one that does."""
    total = 0
    async for piece in body:
        total += len(piece)
        if total > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes", field="body")
        yield piece


async def multipart_file(
    body: AsyncIterator[bytes], boundary: str, upload: Upload
) -> AsyncIterator[bytes]:
    """The bytes of the one ``file`` part; fills ``upload`` from the part's headers. Any other
    part, a second file, an endless preamble, oversized part headers or a broken stream is a
    4xx naming it."""
    parser = multipart.PushMultipartParser(
        boundary,
        max_segment_count=1,
        max_header_count=MAX_PART_HEADERS,
        max_header_size=MAX_PART_HEADER_BYTES,
    )
    seen_file = False
    preamble = 0
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
            if not seen_file:
                # The parser skips whatever comes before the first part without a limit.
                preamble += len(piece)
                if preamble > MAX_PREAMBLE_BYTES:
                    raise InvalidInput(
                        f"no form part within the first {MAX_PREAMBLE_BYTES} bytes", field="body"
                    )
            if parser.closed:
                break
        parser.close()
    except multipart.ParserLimitReached as exc:
        raise InvalidInput(
            f"{exc}: send exactly one part, named 'file', with a few headers", field=FILE_FIELD
        ) from exc
    except multipart.MultipartError as exc:
        raise InvalidInput(f"malformed multipart body: {exc}", field="body") from exc
    if not seen_file:
        raise InvalidInput("the form has no 'file' part", field=FILE_FIELD)
