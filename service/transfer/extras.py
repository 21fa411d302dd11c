"""Prompt files and attachment files of a file store, stored through the same operations the
HTTP API uses (so content is deduplicated and every limit holds); what a limit refuses is
reported as skipped. A dry run checks the same limits, but for the total of a conversation's
files, which only writing them tells."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

from service.core.attachments import DEFAULT_CONTENT_TYPE, MAX_FILENAME, Upload
from service.core.errors import ChatkeepError
from service.core.principal import LOCAL
from service.core.schemas import PROMPT_NAME_PATTERN, PromptPut
from service.core.settings import Settings
from service.db.pool import Connection
from service.history import files, prompts
from service.store.files import CHUNK_SIZE
from service.transfer.cleaning import Cleaner, stable_id


class Extras:
    def __init__(
        self, conn: Connection, cleaner: Cleaner, settings: Settings, *, dry_run: bool
    ) -> None:
        self.conn = conn
        self.cleaner = cleaner
        self.settings = settings
        self.dry_run = dry_run

    async def prompt(self, path: Path) -> bool:
        """The file as the latest version of the prompt named after it; whether that added a
        version (a prompt already saying this is left alone, so re-running adds nothing)."""
        name = path.stem
        if not re.match(PROMPT_NAME_PATTERN, name):
            self.cleaner.report.problem(str(path), f"{name!r} is not a prompt name", "skipped")
            return False
        content = self.cleaner.text(path.read_bytes(), str(path), "content") or ""
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

    async def attachment(self, conversation_id: UUID, folder: Path, path: Path) -> bool:
        """The file attached to the conversation under an id derived from its path; whether it
        was new. One transaction per file: it is stored completely or not at all."""
        relative = path.relative_to(folder).as_posix()
        file_id = stable_id(relative, f"{conversation_id}/files")
        found = await files.find(self.conn, LOCAL, conversation_id, file_id)
        if found is not None:
            return False
        upload = Upload(
            filename=path.name[:MAX_FILENAME],
            content_type=mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE,
        )
        try:
            if self.dry_run:
                files.check_size(path.stat().st_size, self.settings)
                return True
            await files.upload(
                self.conn,
                LOCAL,
                conversation_id,
                file_id=file_id,
                pieces=_pieces(path),
                upload=upload,
                settings=self.settings,
            )
        except ChatkeepError as exc:
            self.cleaner.report.problem(str(path), exc.detail, "skipped")
            return False
        return True


async def _pieces(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            yield chunk
