"""HTTP semantics of a file download: validators (ETag), byte ranges and the headers that make a
browser save the file rather than render it."""

from __future__ import annotations

import re
from urllib.parse import quote

from service.core.errors import RangeNotSatisfiable
from service.core.schemas import FileInfo

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Byte positions beyond any file; longer numbers are read as this (Python refuses to convert
# numbers of thousands of digits, and no file is that large anyway).
_BEYOND_ANY_FILE = 10**18


def _position(digits: str) -> int:
    return int(digits) if len(digits) < len(str(_BEYOND_ANY_FILE)) else _BEYOND_ANY_FILE


def etag(file: FileInfo) -> str:
    """A strong validator: the content's SHA-256 identifies the bytes exactly."""
    return f'"{file.sha256}"'


def not_modified(if_none_match: str | None, file: FileInfo) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag(file) in tags


def byte_range(range_header: str | None, if_range: str | None, file: FileInfo) -> tuple[int, int]:
    """The inclusive (first, last) byte to send. The whole file unless a single satisfiable
    ``bytes=`` range is asked for (and If-Range, when sent, still matches). Several ranges are
    answered with the whole file, which RFC 9110 allows."""
    whole = (0, file.size - 1)
    if not range_header or (if_range is not None and if_range.strip() != etag(file)):
        return whole
    match = _RANGE.match(range_header.strip())
    if match is None:
        return whole  # another unit or a multi-range request: RFC 9110 lets us ignore it
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return whole
    if not first_text:  # bytes=-N: the last N bytes
        first, last = max(file.size - _position(last_text), 0), file.size - 1
    else:
        first = _position(first_text)
        last = min(_position(last_text), file.size - 1) if last_text else file.size - 1
    if first > last or first >= file.size:
        raise RangeNotSatisfiable(
            f"the file has {file.size} bytes; {range_header!r} selects none of them",
            size=file.size,
        )
    return first, last


def content_disposition(filename: str) -> str:
    """``attachment`` with the name twice: an ASCII fallback and the exact UTF-8 name."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def headers(file: FileInfo, first: int, last: int) -> dict[str, str]:
    sent = {
        "Content-Type": file.content_type,
        "Content-Length": str(last - first + 1),
        "Content-Disposition": content_disposition(file.filename),
        "ETag": etag(file),
        "Accept-Ranges": "bytes",
        # Stored content is whatever was uploaded: never let a browser sniff it into HTML.
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    if (first, last) != (0, file.size - 1):
        sent["Content-Range"] = f"bytes {first}-{last}/{file.size}"
    return sent
