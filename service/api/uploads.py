"""Reading an upload from the request body, in constant memory.

Two shapes are accepted: a raw body (the file's bytes, its type in Content-Type, its name in
``?filename=``), and multipart/form-data with one part named ``file`` (as a browser form or
``curl -F file=@path`` sends it) and optional text fields ``metadata`` and ``user_id``. Either
way the file's bytes arrive as a stream of pieces, never as one buffer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import multipart

from service.core.attachments import FILE_FIELD, Upload, clean_content_type, clean_filename
from service.core.errors import InvalidInput, TooLarge

# Bounds of the multipart envelope around the file: bytes before the first part, and the
# headers of a part (RFC 7578 uses three at most).
MAX_PREAMBLE_BYTES = 64 * 1024
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 4096
# The form's text fields besides the file: the file's metadata (a JSON object) and, for a key
# creating the conversation, its owner (at most MAX_USER_ID characters, as in the JSON bodies).
METADATA_FIELD = "metadata"
USER_ID_FIELD = "user_id"
MAX_USER_ID = 255


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


class _Field:
    """A text field of the form, read into memory up to its limit."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.value = bytearray()

    def add(self, piece: bytes) -> None:
        self.value += piece
        if len(self.value) > self.limit:
            raise TooLarge(f"the form field is over {self.limit} bytes", field=self.name)

    def text(self) -> str:
        try:
            return self.value.decode()
        except UnicodeDecodeError:
            raise InvalidInput("not UTF-8 text", field=self.name) from None


def form_metadata(text: str) -> dict[str, Any]:
    """The ``metadata`` field: a JSON object (its size and contents are checked with the
    upload, as any metadata)."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}", field=METADATA_FIELD) from None
    if not isinstance(value, dict):
        raise InvalidInput("must be a JSON object", field=METADATA_FIELD)
    return value


def form_user_id(text: str) -> str:
    if not 1 <= len(text) <= MAX_USER_ID:
        raise InvalidInput(f"1 to {MAX_USER_ID} characters", field=USER_ID_FIELD)
    return text


class _Form:
    """The parts of the form as they come: the one file (its bytes passed on) and the text
    fields, each allowed once."""

    def __init__(self, upload: Upload, limits: dict[str, int]) -> None:
        self.upload = upload
        self.limits = limits
        self.seen_file = False
        self.fields: dict[str, _Field] = {}
        # The text field being read; None while the file's bytes come.
        self.field: _Field | None = None

    @property
    def started(self) -> bool:
        return self.seen_file or bool(self.fields)

    def part(self, segment: multipart.MultipartSegment) -> None:
        if segment.name == FILE_FIELD and not self.seen_file:
            self.seen_file = True
            # Checked before any byte is stored.
            self.upload.filename = clean_filename(segment.filename)
            self.upload.content_type = clean_content_type(segment.content_type)
        elif segment.name in self.limits and segment.name not in self.fields:
            self.field = self.fields[segment.name] = _Field(segment.name, self.limits[segment.name])
        else:
            raise InvalidInput(
                f"unexpected form field {segment.name!r}; send the file as 'file', with at most "
                "one 'metadata' and one 'user_id'",
                field=segment.name,
            )

    def file_bytes(self, event: bytes | None) -> bytes | None:
        """The event's bytes when they are the file's; a text field's are kept."""
        if event is None:  # the end of a part
            self.field = None
        elif self.field is not None:
            self.field.add(event)
        else:
            return event
        return None

    def finish(self) -> None:
        if not self.seen_file:
            raise InvalidInput("the form has no 'file' part", field=FILE_FIELD)
        if METADATA_FIELD in self.fields:
            self.upload.metadata = form_metadata(self.fields[METADATA_FIELD].text())
        if USER_ID_FIELD in self.fields:
            self.upload.user_id = form_user_id(self.fields[USER_ID_FIELD].text())


async def multipart_file(
    body: AsyncIterator[bytes], boundary: str, upload: Upload, *, max_metadata_bytes: int
) -> AsyncIterator[bytes]:
    """The bytes of the one ``file`` part; fills ``upload`` from the part's headers and from
    the text fields ``metadata`` and ``user_id`` (before or after the file, each at most once).
    Any other part, a second file, an endless preamble, oversized part headers or fields, or a
    broken stream is a 4xx naming it."""
    form = _Form(upload, {METADATA_FIELD: max_metadata_bytes, USER_ID_FIELD: 4 * MAX_USER_ID})
    parser = multipart.PushMultipartParser(
        boundary,
        max_segment_count=1 + len(form.limits),
        max_header_count=MAX_PART_HEADERS,
        max_header_size=MAX_PART_HEADER_BYTES,
    )
    preamble = 0
    try:
        async for piece in body:
            if not piece:  # an empty piece would tell the parser the body has ended
                continue
            for event in parser.parse(piece):
                if isinstance(event, multipart.MultipartSegment):
                    form.part(event)
                elif data := form.file_bytes(event):
                    yield data
            if not form.started:
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
            f"{exc}: send one part named 'file' (and the fields 'metadata' and 'user_id'), "
            "with a few headers",
            field=FILE_FIELD,
        ) from exc
    except multipart.MultipartError as exc:
        raise InvalidInput(f"malformed multipart body: {exc}", field="body") from exc
    form.finish()
