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
from uuid import UUID

import asyncpg

from service.core.principal import Scope
from service.core.schemas import FileInfo
from service.db.pool import Connection
from service.db.queries import queries

# Bytes per stored chunk: large enough that a chunk is one cheap round trip, small enough that
# upload and download hold little in memory.
CHUNK_SIZE = 256 * 1024
# Chunks fetched per round trip when downloading.
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


async def lock_conversation(conn: Connection, *, conversation_id: UUID, scope: Scope) -> int | None:
    """Bytes the conversation's files take, with the conversation locked; None if missing."""
    used: int | None = await queries().val(
        conn, "files.lock_conversation", conversation_id=conversation_id, **scope
    )
    return used


async def _keep_content(conn: Connection, *, blob_id: int, size: int, sha256: bytes) -> int:
    """The blob that stores this content from now on: an identical one already stored (the new
    blob ``blob_id`` is dropped), else ``blob_id`` itself, sealed."""
    await queries().exec(conn, "files.lock_content", sha256=sha256)
    stored: int | None = await queries().val(conn, "files.find_blob", sha256=sha256)
    if stored is not None:
        await queries().exec(conn, "files.drop_blob", blob_id=blob_id)
        return stored
    await queries().exec(conn, "files.seal_blob", blob_id=blob_id, size=size, sha256=sha256)
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
) -> FileInfo | None:
    """File ``file_id`` of the (locked) conversation, with the content written to ``blob_id``
    (or the identical content already stored); None when the id is taken."""
    kept = await _keep_content(conn, blob_id=blob_id, size=digest.size, sha256=digest.sha256)
    row = await queries().one(
        conn,
        "files.insert",
        conversation_id=conversation_id,
        file_id=file_id,
        blob_id=kept,
        filename=filename,
        content_type=content_type,
        size=digest.size,
        sha256=digest.sha256,
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


async def read_content(
    conn: Connection, *, conversation_id: UUID, file_id: UUID, start: int, end: int
) -> AsyncIterator[bytes]:
    """Bytes ``start..end`` (inclusive) of a file, a few chunks per round trip. Run it in one
    snapshot (a repeatable-read transaction), so a concurrent delete cannot cut it short."""
    located = await queries().one(
        conn, "files.locate_content", conversation_id=conversation_id, file_id=file_id
    )
    if located is None:
        return
    blob_id, chunk_size = located
    first, last = start // chunk_size, end // chunk_size
    for batch_first in range(first, last + 1, CHUNKS_PER_READ):
        batch_last = min(batch_first + CHUNKS_PER_READ - 1, last)
        rows = await queries().many(
            conn,
            "files.read_chunks",
            blob_id=blob_id,
            first_chunk=batch_first,
            last_chunk=batch_last,
        )
        for n, (data,) in enumerate(rows, start=batch_first):
            offset = n * chunk_size
            yield bytes(data[max(start - offset, 0) : end - offset + 1])
