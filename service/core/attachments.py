"""A stored file's name and media type, as checked before any of its bytes is stored; the
upload endpoint and the importers both use them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from service.core.errors import InvalidInput

# The multipart form field an upload sends the file in, and the field its problems name.
FILE_FIELD = "file"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_FILENAME = 255
# type/subtype with optional parameters, as RFC 9110 allows it: ASCII tokens, parameters of
# printable ASCII (the type is sent back as a header, which must be Latin-1 at the very least).
_CONTENT_TYPE = re.compile(r"^[\w!#$&^.+-]+/[\w!#$&^.+-]+(\s*;[\x20-\x7e]*)?$", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# clean_filename's rule as a regular expression (for the OpenAPI document): no control
# characters, and a last path component that is not blank.
FILENAME_PATTERN = r"^[^\u0000-\u001f\u007f]*[^\u0000-\u001f\u007f\s/\\][^\u0000-\u001f\u007f/\\]*$"


@dataclass
class Upload:
    """What the request says about the file, checked; filled in as the body is read (a
    multipart part's headers come before its bytes; its other fields may come after them)."""

    filename: str = ""
    content_type: str = DEFAULT_CONTENT_TYPE
    # The file's JSON metadata (the form's `metadata` field).
    metadata: dict[str, Any] = field(default_factory=dict)
    # The owner of the conversation when the upload creates it (the form's `user_id`; keys
    # only, as for an append).
    user_id: str | None = None


def clean_filename(name: str | None) -> str:
    """The name to store: the last path component (clients send full paths); refuses names
    that cannot be put in a Content-Disposition header safely."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base:
        raise InvalidInput("a file name is required", field="filename")
    if len(name or "") > MAX_FILENAME:
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
