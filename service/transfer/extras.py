"""Prompt files and attachment files of a file store, written through the same store
functions the HTTP API uses (so content is deduplicated and limits of the schema hold)."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

from service.auth.principal import Scope
from service.models import PROMPT_NAME_PATTERN
from service.queries import Connection
from service.store import files, prompts
from service.transfer.cleaning import Cleaner, stable_id
from service.uploads import DEFAULT_CONTENT_TYPE

TRUSTED: Scope = (True, None, None)


async def import_prompt(conn: Connection, path: Path, cleaner: Cleaner, *, dry_run: bool) -> bool:
    """The file as the latest version of the prompt named after it; whether that added a version
    (a prompt already saying this is left alone, so re-running adds nothing)."""
    name = path.stem
    if not re.match(PROMPT_NAME_PATTERN, name):
        cleaner.report.problem(str(path), f"{name!r} is not a prompt name", "skipped")
        return False
    content = cleaner.text(path.read_bytes(), str(path), "content") or ""
    if dry_run:
        return True
    async with conn.transaction():
        _, new = await prompts.put(conn, name=name, content=content, metadata={})
    return new


async def import_attachment(
    conn: Connection, conversation_id: UUID, folder: Path, path: Path, *, dry_run: bool
) -> bool:
    """The file attached to the conversation under an id derived from its path; whether it was
    new. One transaction per file: it is stored completely or not at all."""
    relative = path.relative_to(folder).as_posix()
    file_id = stable_id(relative, f"{conversation_id}/files")
    found = await files.get(conn, conversation_id=conversation_id, file_id=file_id, scope=TRUSTED)
    if found is not None or dry_run:
        return found is None
    digest = files.Digest()
    async with conn.transaction():
        blob_id = await files.write_blob(conn, _chunks(path), digest)
        await files.lock_conversation(conn, conversation_id=conversation_id, scope=TRUSTED)
        await files.attach(
            conn,
            conversation_id=conversation_id,
            file_id=file_id,
            blob_id=blob_id,
            digest=digest,
            filename=path.name[:255],
            content_type=mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE,
        )
    return True


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(files.CHUNK_SIZE):
            yield chunk
