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
from service.core.errors import InvalidInput


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
