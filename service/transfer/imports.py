"""The three importers: read a source conversation by conversation, hand each to the Loader,
report bad rows, verify. Each returns when the source is exhausted; the caller prints the
Report and chooses the exit status."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from uuid import UUID

import msgspec

from service.core.settings import Settings
from service.db.pool import Connection
from service.store import transfer
from service.store.transfer import ConversationRow, MessageRow
from service.transfer import SourceError, extras, files_source, ndjson, sqlite_source
from service.transfer.assemble import SourceConversation, assemble, conversation_id
from service.transfer.cleaning import Cleaner, stable_id
from service.transfer.loader import Loader
from service.transfer.records import Conversation
from service.transfer.report import Report

Progress = Callable[[int], object]


class _Run:
    """What the importers share: the loader, the cleaning rules, and the ids already seen in
    this run (a source repeating an id must not hit the database's unique key)."""

    def __init__(self, conn: Connection, report: Report, *, dry_run: bool) -> None:
        self.conn = conn
        self.report = report
        self.dry_run = dry_run
        self.cleaner = Cleaner(report)
        self.loader = Loader(conn, report, dry_run=dry_run)
        self.seen: set[UUID] = set()

    def new_id(
        self, source: SourceConversation, namespace: str, *, repeat_is_copy: bool
    ) -> UUID | None:
        """The conversation's id. A repeated source id gets None when the repeat is a copy of
        the first (a SQLite session row repeating another's id joins the same messages): skip
        it; else (a JSON file) an id derived from its location."""
        conversation_uuid = conversation_id(source, namespace)
        if conversation_uuid in self.seen:
            if repeat_is_copy:
                self.report.problem(
                    source.location,
                    f"duplicate session id {source.id!r}; its messages were imported with the "
                    "first session of that id",
                    "skipped",
                )
                return None
            self.report.problem(
                source.location,
                f"duplicate conversation id {source.id!r}; given an id derived from the file",
                "fixed",
            )
            conversation_uuid = stable_id(source.location, f"{namespace}:location")
        self.seen.add(conversation_uuid)
        return conversation_uuid


async def import_sqlite(
    conn: Connection,
    path: Path,
    report: Report,
    *,
    sessions_table: str,
    messages_table: str,
    mapping: Mapping[str, str],
    namespace: str,
    dry_run: bool,
    progress: Callable[[int | None], Progress],
) -> None:
    db = sqlite_source.connect(path)
    try:
        layout = sqlite_source.open_layout(db, sessions_table, messages_table, mapping)
        total = sqlite_source.count_messages(db, layout)
    except sqlite3.Error as exc:
        db.close()
        raise SourceError(f"{path}: {exc}") from exc
    run = _Run(conn, report, dry_run=dry_run)
    advance = progress(total)
    try:
        for source in sqlite_source.read(db, layout, path):
            conversation_uuid = run.new_id(source, namespace, repeat_is_copy=True)
            if conversation_uuid is not None:
                conversation = assemble(run.cleaner, source, namespace, conversation_uuid)
                await run.loader.add(conversation)
            advance(len(source.messages))
        await run.loader.flush()
    finally:
        db.close()


async def import_files(
    conn: Connection,
    directory: Path,
    report: Report,
    *,
    namespace: str,
    dry_run: bool,
    progress: Callable[[int | None], Progress],
    settings: Settings,
) -> None:
    """Prompts and attachments go through the same operations as the HTTP API's (so they meet
    the same limits, reported as skipped when they do not)."""
    if not directory.is_dir():
        raise SourceError(f"{directory}: not a directory")
    run = _Run(conn, report, dry_run=dry_run)
    extra = extras.Extras(conn, run.cleaner, settings, dry_run=dry_run)
    for prompt in files_source.prompt_files(directory):
        if await extra.prompt(prompt):
            report.prompts_imported += 1
    paths = files_source.conversation_files(directory)
    advance = progress(len(paths))
    for path in paths:
        source = files_source.read_file(path, run.cleaner)
        conversation_uuid = (
            None if source is None else run.new_id(source, namespace, repeat_is_copy=False)
        )
        if source is not None and conversation_uuid is not None:
            flushed = await run.loader.add(
                assemble(run.cleaner, source, namespace, conversation_uuid)
            )
            await _attachments(extra, flushed)
        advance(1)
    await _attachments(extra, await run.loader.flush())


async def _attachments(extra: extras.Extras, batch: list[Conversation]) -> None:
    """Attachments of conversations whose batch is stored (files need their conversation)."""
    for conversation in batch:
        folder = Path(conversation.location).with_suffix("")
        for path in files_source.attachments(Path(conversation.location)):
            if await extra.attachment(conversation.row.id, folder, path):
                extra.cleaner.report.files_imported += 1


async def import_ndjson(
    conn: Connection,
    path: Path,
    report: Report,
    *,
    dry_run: bool,
    progress: Callable[[int | None], Progress],
) -> None:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    run = _Run(conn, report, dry_run=dry_run)
    advance = progress(path.stat().st_size)
    reader = _NdjsonReader(run, path)
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            await reader.line(number, raw)
            advance(len(raw))
    await reader.finish()


class _NdjsonReader:
    def __init__(self, run: _Run, path: Path) -> None:
        self.run = run
        self.path = path
        self.current: ndjson.ConversationLine | None = None
        self.location = ""
        self.messages: list[MessageRow] = []
        self.header: ndjson.Header | None = None
        self.end: ndjson.End | None = None
        self.prompt_versions = 0

    async def line(self, number: int, raw: bytes) -> None:
        where = f"{self.path}:{number}"
        if not raw.strip():
            return
        try:
            record = ndjson.decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if self.header is None:
                raise SourceError(f"{where}: not a chatkeep export ({exc})") from exc
            self.run.report.problem(where, f"not a line of the export format: {exc}", "skipped")
            return
        if isinstance(record, ndjson.Header):
            if record.version != ndjson.VERSION:
                raise SourceError(f"{where}: export format version {record.version} is not 1")
            self.header = record
        elif self.header is None:
            raise SourceError(f"{where}: not a chatkeep export (no header line first)")
        elif isinstance(record, ndjson.ConversationLine):
            await self._finish_conversation()
            self.current, self.location = record, where
        elif isinstance(record, ndjson.MessageLine):
            self._message(record, where)
        elif isinstance(record, ndjson.PromptVersionLine):
            await self._finish_conversation()
            await self._prompt_version(record)
        else:
            self.end = record

    def _message(self, record: ndjson.MessageLine, where: str) -> None:
        if self.current is None or record.conversation_id != self.current.id:
            self.run.report.problem(where, "message outside its conversation", "skipped")
            return
        cleaner = self.run.cleaner
        self.messages.append(
            MessageRow(
                conversation_id=record.conversation_id,
                seq=record.seq,
                id=record.id,
                role=record.role,
                content=cleaner.text(record.content, where, "content") or "",
                topic=cleaner.text(record.topic, where, "topic"),
                metadata=record.metadata,
                created_at=record.created_at,
            )
        )

    async def _finish_conversation(self) -> None:
        line, self.current = self.current, None
        if line is None:
            return
        messages, self.messages = self.messages, []
        if line.id in self.run.seen:
            self.run.report.problem(self.location, f"conversation {line.id} repeated", "skipped")
            return
        self.run.seen.add(line.id)
        row = ConversationRow(
            id=line.id,
            user_id=line.user_id,
            visitor_hash=bytes.fromhex(line.visitor_hash) if line.visitor_hash else None,
            title=line.title,
            metadata=line.metadata,
            message_count=len(messages),
            last_seq=max([line.last_seq, *(message.seq for message in messages)]),
            created_at=line.created_at,
            updated_at=line.updated_at,
        )
        await self.run.loader.add(Conversation(row, messages, self.location))

    async def _prompt_version(self, record: ndjson.PromptVersionLine) -> None:
        self.prompt_versions += 1
        if self.run.dry_run:
            return
        async with self.run.conn.transaction():
            added = await transfer.import_prompt_version(
                self.run.conn,
                name=record.name,
                version=record.version,
                content=record.content,
                metadata=record.metadata,
                created_at=record.created_at,
                retired=record.retired,
            )
        self.run.report.prompts_imported += added

    async def finish(self) -> None:
        await self._finish_conversation()
        await self.run.loader.flush()
        report = self.run.report
        if self.end is None:
            report.mismatch(str(self.path), "the export is truncated: it has no end line")
        elif (self.end.conversations, self.end.messages, self.end.prompt_versions) != (
            report.conversations_read,
            report.messages_read,
            self.prompt_versions,
        ):
            report.mismatch(
                str(self.path),
                f"the end line counts {self.end.conversations} conversations, "
                f"{self.end.messages} messages, {self.end.prompt_versions} prompt versions; "
                f"the file holds {report.conversations_read}, {report.messages_read}, "
                f"{self.prompt_versions}",
            )
