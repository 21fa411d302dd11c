"""Files attached to a conversation: upload (streamed), metadata, list, download, delete."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import msgspec

from chatkeep_client._call import (
    Call,
    ConversationRef,
    Pages,
    conversation_path,
    decoder,
    json_call,
    no_content,
    query,
    segment,
)
from chatkeep_client.models import FileInfo, FilePage, Metadata

# What an upload reads: a path, the bytes themselves, or a binary file object (read whole,
# from its start: sent again on a retry when it can seek).
Source = str | os.PathLike[str] | bytes | IO[bytes]
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class _MetadataPatch(msgspec.Struct):
    metadata: Metadata


def _path(conversation_id: ConversationRef) -> str:
    return f"{conversation_path(conversation_id)}/files"


def _file_path(conversation_id: ConversationRef, file_id: UUID | str) -> str:
    return f"{_path(conversation_id)}/{segment(file_id, 'file_id')}"


def _seekable(source: Source) -> bool:
    if isinstance(source, str | os.PathLike | bytes):
        return True
    try:
        return bool(source.seekable())
    except (AttributeError, ValueError):
        return False


def _default_filename(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return Path(name).name
    raise ValueError("an upload of bytes or of a file object without a name needs filename=")


def upload(
    conversation_id: ConversationRef,
    source: Source,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    metadata: Metadata | None = None,
    user_id: str | None = None,
    file_id: UUID | str | None = None,
) -> Call[FileInfo]:
    """Attach a file, streamed from a path or file object (``bytes`` too). The client picks
    the file id unless given, so a retried upload stores the file once."""
    name = filename or _default_filename(source)
    kind = content_type or DEFAULT_CONTENT_TYPE
    fields = {}
    if metadata is not None:
        fields["metadata"] = msgspec.json.encode(metadata).decode()
    if user_id is not None:
        fields["user_id"] = user_id

    @contextmanager
    def opened() -> Iterator[dict[str, Any]]:
        if isinstance(source, str | os.PathLike):
            with Path(source).open("rb") as file:
                yield {"files": {"file": (name, file, kind)}, "data": fields}
        else:
            yield {"files": {"file": (name, source, kind)}, "data": fields}

    params = query(file_id=str(file_id or uuid.uuid4()))
    return Call(
        "POST",
        _path(conversation_id),
        decoder(FileInfo),
        params=params,
        body=opened,
        resendable=_seekable(source),
    )


def get(conversation_id: ConversationRef, file_id: UUID | str) -> Call[FileInfo]:
    """A file's metadata."""
    return Call("GET", _file_path(conversation_id, file_id), decoder(FileInfo))


def page(
    conversation_id: ConversationRef, *, limit: int | None = None, cursor: str | None = None
) -> Call[FilePage]:
    """A page of the conversation's files, oldest first."""
    params = query(limit=limit, cursor=cursor)
    return Call("GET", _path(conversation_id), decoder(FilePage), params=params)


def iterate(
    conversation_id: ConversationRef, *, page_size: int | None = None
) -> Pages[FilePage, FileInfo]:
    def following(previous: FilePage) -> Call[FilePage] | None:
        if previous.next_cursor is None:
            return None
        return page(conversation_id, limit=page_size, cursor=previous.next_cursor)

    return Pages(page(conversation_id, limit=page_size), following, lambda listed: listed.items)


def set_metadata(
    conversation_id: ConversationRef, file_id: UUID | str, metadata: Metadata
) -> Call[FileInfo]:
    """Replace a file's metadata."""
    return json_call(
        "PATCH", _file_path(conversation_id, file_id), _MetadataPatch(metadata), decoder(FileInfo)
    )


def content(conversation_id: ConversationRef, file_id: UUID | str) -> Call[None]:
    """The file's bytes; the clients stream the answer rather than decode it."""
    return Call("GET", f"{_file_path(conversation_id, file_id)}/content", no_content)


def delete(conversation_id: ConversationRef, file_id: UUID | str) -> Call[None]:
    return Call("DELETE", _file_path(conversation_id, file_id), no_content, gone_is_done=True)
