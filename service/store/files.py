"""Files and their content-addressed chunks (queries in sql/files.sql).

An upload streams into a new blob inside one transaction; at the end, under an advisory lock on
its SHA-256, it either becomes the stored copy of that content or is dropped for the identical
blob already stored. The trigger files_release_blobs does the reverse on every delete, under the
same lock, so content is stored once and never outlives its last file.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from service.core.principal import Scope
from service.core.schemas import FileInfo
from service.db.pool import Connection
from service.db.queries import queries

# Bytes per stored chunk: large enough that a chunk is one cheap round trip, small enough that
# upload and download hold little in memory.
CHUNK_SIZE = 256 * 1024
# Chunks read per round trip when streaming a file out.
CHUNKS_PER_READ = 4


def _file(row: asyncpg.Record) -> FileInfo:
    return FileInfo(
        row["id"],
        row["conversation_id"],
        row["filename"],
        row["content_type"],
        row["size"],
        bytes(row["sha256"]).hex(),
        row["created_at"],
        row["metadata"],
    )


class Digest:
    """Size and SHA-256 of the chunks that passed through."""

    def __init__(self) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha256.update(chunk)

    @property
    def sha256(self) -> bytes:
        return self._sha256.digest()


async def _chunked(pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The stream cut into CHUNK_SIZE chunks (the last may be shorter; none for an empty
    stream)."""
    buffer = bytearray()
    async for piece in pieces:
        buffer += piece
        while len(buffer) >= CHUNK_SIZE:
            yield bytes(buffer[:CHUNK_SIZE])
            del buffer[:CHUNK_SIZE]
    if buffer:
        yield bytes(buffer)


async def write_blob(conn: Connection, pieces: AsyncIterable[bytes], digest: Digest) -> int:
    """A new blob holding the bytes of ``pieces`` (of any size), measured into ``digest``.
    Run it in the transaction that attaches it: until then its SHA-256 is not set."""
    blob_id: int = await queries().val(conn, "files.start_blob", chunk_size=CHUNK_SIZE)
    n = 0
    async for chunk in _chunked(pieces):
        digest.update(chunk)
        await queries().exec(conn, "files.write_chunk", blob_id=blob_id, n=n, data=chunk)
        n += 1
    return blob_id


async def upload_target(conn: Connection, *, conversation_id: UUID, scope: Scope) -> bool | None:
    """True when the conversation is the caller's, False when it is someone else's, None when
    it does not exist."""
    mine: bool | None = await queries().val(
        conn, "files.upload_target", conversation_id=conversation_id, **scope
    )
    return mine


class LockedForFile(NamedTuple):
    # The user the conversation belongs to.
    user_id: str | None
    # Whether a user or a visitor owns it (its quotas apply).
    owned: bool
    # Bytes its files take.
    used: int


async def lock_conversation(
    conn: Connection, *, conversation_id: UUID, scope: Scope
) -> LockedForFile | None:
    """The conversation, locked to this transaction; None if missing. Two statements: the sum
    must see files committed while this one waited for the lock."""
    row = await queries().one(
        conn, "files.lock_conversation", conversation_id=conversation_id, **scope
    )
    if row is None:
        return None
    used: int = await queries().val(
        conn, "files.conversation_bytes", conversation_id=conversation_id
    )
    return LockedForFile(row["user_id"], row["owned"], used)


async def keep_content(conn: Connection, *, blob_id: int, digest: Digest) -> int:
    """The blob that stores this content from now on: an identical one already stored (the new
    blob ``blob_id`` is dropped), else ``blob_id`` itself, sealed. Holds the content's lock
    until the end of the transaction."""
    sha256 = digest.sha256
    await queries().exec(conn, "files.lock_content", sha256=sha256)
    stored: int | None = await queries().val(conn, "files.find_blob", sha256=sha256)
    if stored is not None:
        await queries().exec(conn, "files.drop_blob", blob_id=blob_id)
        return stored
    await queries().exec(conn, "files.seal_blob", blob_id=blob_id, size=digest.size, sha256=sha256)
    return blob_id


async def attach(
    conn: Connection,
    *,
    conversation_id: UUID,
    file_id: UUID,
    blob_id: int,
    digest: Digest,
    filename: str,
    content_type: str,
    metadata: dict[str, Any],
) -> FileInfo | None:
    """File ``file_id`` of the (locked) conversation, with the content kept in ``blob_id`` (as
    keep_content returned it); None when the id is taken."""
    row = await queries().one(
        conn,
        "files.insert",
        conversation_id=conversation_id,
        file_id=file_id,
        blob_id=blob_id,
        filename=filename,
        content_type=content_type,
        size=digest.size,
        sha256=digest.sha256,
        metadata=metadata,
    )
    return _file(row) if row else None


async def set_metadata(
    conn: Connection,
    *,
    conversation_id: UUID,
    file_id: UUID,
    scope: Scope,
    metadata: dict[str, Any],
) -> FileInfo | None:
    row = await queries().one(
        conn,
        "files.set_metadata",
        conversation_id=conversation_id,
        file_id=file_id,
        metadata=metadata,
        **scope,
    )
    return _file(row) if row else None


async def get(
    conn: Connection, *, conversation_id: UUID, file_id: UUID, scope: Scope
) -> FileInfo | None:
    row = await queries().one(
        conn, "files.get", conversation_id=conversation_id, file_id=file_id, **scope
    )
    return _file(row) if row else None


async def list_files(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    after_created_at: datetime,
    after_id: UUID,
    limit: int,
) -> list[FileInfo]:
    rows = await queries().many(
        conn,
        "files.list",
        conversation_id=conversation_id,
        after_created_at=after_created_at,
        after_id=after_id,
        max_rows=limit,
        **scope,
    )
    return [_file(row) for row in rows]


async def delete(conn: Connection, *, conversation_id: UUID, file_id: UUID, scope: Scope) -> bool:
    deleted = await queries().execrows(
        conn, "files.delete", conversation_id=conversation_id, file_id=file_id, **scope
    )
    return deleted > 0


class Download(NamedTuple):
    """A file and where its bytes are."""

    file: FileInfo
    blob_id: int
    chunk_size: int


async def get_for_download(
    conn: Connection, *, conversation_id: UUID, file_id: UUID, scope: Scope
) -> Download | None:
    row = await queries().one(
        conn, "files.get", conversation_id=conversation_id, file_id=file_id, **scope
    )
    return Download(_file(row), row["blob_id"], row["chunk_size"]) if row else None


async def read_chunks(conn: Connection, *, blob_id: int, first: int, last: int) -> list[bytes]:
    """Chunks ``first..last`` (inclusive) of a blob, in order; fewer when the blob went."""
    rows = await queries().many(
        conn, "files.read_chunks", blob_id=blob_id, first_chunk=first, last_chunk=last
    )
    return [row["data"] for row in rows]
