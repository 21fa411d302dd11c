"""Prompt files and attachment files of a file store, written through the same store
functions the HTTP API uses (so content is deduplicated and limits of the schema hold)."""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from uuid import UUID

from service.auth.principal import Scope
from service.models import PROMPT_NAME_PATTERN
from service.queries import Connection
from service.store import files, prompts
from service.transfer.cleaning import Cleaner, stable_id
from service.uploads import DEFAULT_CONTENT_TYPE, Digest

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
    digest = Digest()
    async with conn.transaction():
        blob_id = await files.start_blob(conn)
        with path.open("rb") as source:
            for n, chunk in enumerate(iter(lambda: source.read(files.CHUNK_SIZE), b"")):
                digest.update(chunk)
                await files.write_chunk(conn, blob_id=blob_id, n=n, data=chunk)
        await files.lock_conversation(conn, conversation_id=conversation_id, scope=TRUSTED)
        kept = await files.keep_content(
            conn, blob_id=blob_id, size=digest.size, sha256=digest.sha256
        )
        await files.insert(
            conn,
            conversation_id=conversation_id,
            file_id=file_id,
            blob_id=kept,
            filename=path.name[:255],
            content_type=mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE,
            size=digest.size,
            sha256=digest.sha256,
        )
    return True
