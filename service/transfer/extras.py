"""Prompts and files an import brings besides conversations, stored through the same operations
the HTTP API uses (so content is deduplicated and every limit holds); what a limit refuses is
reported as skipped. A dry run checks the same limits, but for the total of a conversation's
files, which only writing them tells."""

from __future__ import annotations

import contextlib
import mimetypes
import re
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from uuid import UUID

from service.core.attachments import (
    DEFAULT_CONTENT_TYPE,
    MAX_FILENAME,
    Upload,
    clean_content_type,
    clean_filename,
)
from service.core.errors import ChatkeepError, InvalidInput
from service.core.principal import LOCAL
from service.core.schemas import PROMPT_NAME_PATTERN, PromptPut
from service.core.settings import Settings
from service.db.pool import Connection
from service.history import files, prompts
from service.store.files import CHUNK_SIZE
from service.transfer.cleaning import Cleaner, stable_id
from service.transfer.source_tree import SourceTree, Unreadable


class Extras:
    def __init__(
        self, conn: Connection, cleaner: Cleaner, settings: Settings, *, dry_run: bool
    ) -> None:
        self.conn = conn
        self.cleaner = cleaner
        self.settings = settings
        self.dry_run = dry_run

    async def prompt(self, tree: SourceTree, path: Path) -> bool:
        """The file as the latest version of the prompt named after it; whether that added a
        version (a prompt already saying this is left alone, so re-running adds nothing)."""
        name = path.stem
        if not re.match(PROMPT_NAME_PATTERN, name):
            self.cleaner.report.problem(str(path), f"{name!r} is not a prompt name", "skipped")
            return False
        try:
            raw = tree.read_bytes(path)
        except Unreadable as exc:
            tree.refuse(path, exc.reason)
            return False
        content = self.cleaner.text(raw, str(path), "content") or ""
        try:
            if self.dry_run:
                prompts.check(PromptPut(content=content), self.settings)
                return True
            _, new = await prompts.put(
                self.conn, LOCAL, name, PromptPut(content=content), self.settings
            )
        except ChatkeepError as exc:
            self.cleaner.report.problem(str(path), exc.detail, "skipped")
            return False
        return new

    async def attachment(
        self, tree: SourceTree, conversation_id: UUID, folder: Path, path: Path
    ) -> bool:
        """The file attached to the conversation under an id derived from its path; whether it
        was new."""
        try:
            return await self.file(
                conversation_id,
                file_id=stable_id(path.relative_to(folder).as_posix(), f"{conversation_id}/files"),
                filename=path.name[:MAX_FILENAME],
                content_type=mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE,
                pieces=_pieces(tree, path),
                location=str(path),
            )
        except Unreadable as exc:
            tree.refuse(path, exc.reason)
            return False

    async def file(
        self,
        conversation_id: UUID,
        *,
        file_id: UUID,
        filename: str,
        content_type: str,
        pieces: AsyncIterable[bytes],
        location: str,
    ) -> bool:
        """The file stored with the upload operation (one transaction: all of it or nothing;
        a savepoint inside an import's batch), or in a dry run checked against the per-file
        limit; whether it was (or would be) new. Refused by a limit, or named or typed as the
        API would refuse (they are sent back in download headers): reported and skipped."""
        try:
            upload = Upload(
                filename=clean_filename(filename), content_type=clean_content_type(content_type)
            )
        except InvalidInput as exc:
            self.cleaner.report.problem(location, f"bad {exc.field}: {exc.detail}", "skipped")
            return False
        try:
            if self.dry_run:
                size = 0
                async for piece in pieces:
                    size += len(piece)
                    files.check_size(size, self.settings)
                return True
            _, new = await files.upload(
                # The import's own connection: inside a batch's transaction, the upload's
                # transaction is a savepoint of it.
                lambda: contextlib.nullcontext(self.conn),
                LOCAL,
                conversation_id,
                file_id=file_id,
                pieces=pieces,
                upload=upload,
                settings=self.settings,
            )
        except ChatkeepError as exc:
            self.cleaner.report.problem(location, exc.detail, "skipped")
            return False
        return new


async def _pieces(tree: SourceTree, path: Path) -> AsyncIterator[bytes]:
    with tree.open(path) as source:
        while chunk := source.read(CHUNK_SIZE):
            yield chunk
