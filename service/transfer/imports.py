"""The three importers: read a source conversation by conversation, hand each to the Loader,
report bad rows, verify. Each returns when the source is exhausted; the caller prints the
Report and chooses the exit status."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar
from uuid import UUID

import msgspec

from service.core.settings import Settings
from service.db.pool import Connection
from service.store import transfer
from service.store.transfer import ConversationRow, MessageRow
from service.transfer import SourceError, extras, files_source, ndjson, sqlite_source
from service.transfer.assemble import (
    SourceConversation,
    assemble,
    conversation_id,
    drop_repeated_external_ids,
)
from service.transfer.attachment_layout import DEFAULT_LAYOUT, Layout, attachment_files
from service.transfer.cleaning import SOURCE_ROLE_KEY, Cleaner, json_raw, stable_id
from service.transfer.loader import Loader
from service.transfer.records import Conversation
from service.transfer.report import Report
from service.transfer.source_tree import SourceTree

Progress = Callable[[int], object]
L = TypeVar("L", bound=msgspec.Struct)


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

    def conversations() -> Iterator[Conversation]:
        # Runs in the loader's reading threads, while the previous batch is written.
        for source in sqlite_source.read(db, layout, path):
            conversation_uuid = run.new_id(source, namespace, repeat_is_copy=True)
            if conversation_uuid is not None:
                yield assemble(run.cleaner, source, namespace, conversation_uuid)
            advance(len(source.messages))

    try:
        await run.loader.load(conversations())
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
    layouts: Sequence[Layout] | None = None,
) -> None:
    """Prompts and attachments go through the same operations as the HTTP API's (so they meet
    the same limits, reported as skipped when they do not). Nothing is read through a link
    (source_tree.py). Attachments (found where ``layouts`` say) are added only to
    conversations this run creates, in the transaction that creates them (Loader.with_rows):
    never to a conversation that was there before, and after a crash a conversation is stored
    with its files or not at all, so a re-run finishes the job."""
    if not directory.is_dir():
        raise SourceError(f"{directory}: not a directory")
    run = _Run(conn, report, dry_run=dry_run)
    tree = SourceTree(directory, report)
    layouts = layouts or [Layout(DEFAULT_LAYOUT)]
    extra = extras.Extras(conn, run.cleaner, settings, dry_run=dry_run)
    for prompt in files_source.prompt_files(tree):
        if await extra.prompt(tree, prompt):
            report.prompts_imported += 1
    paths = files_source.conversation_files(tree)
    advance = progress(len(paths))
    for path in paths:
        source = files_source.read_file(tree, path, run.cleaner)
        conversation_uuid = (
            None if source is None else run.new_id(source, namespace, repeat_is_copy=False)
        )
        if source is not None and conversation_uuid is not None:
            conversation = assemble(run.cleaner, source, namespace, conversation_uuid)
            names = files_source.conversation_names(path, source, conversation_uuid)
            attached = attachment_files(tree, layouts, names)
            if not attached:
                await run.loader.add(conversation)
            else:
                async with run.loader.with_rows(conversation) as created:
                    if created:
                        await _attachments(extra, tree, conversation_uuid, attached)
        advance(1)
    await run.loader.flush()


async def _attachments(
    extra: extras.Extras, tree: SourceTree, conversation_id: UUID, paths: list[Path]
) -> None:
    for path in paths:
        # File ids derive from the path below the import directory, unique whatever the layout.
        if await extra.attachment(tree, conversation_id, tree.root, path):
            extra.cleaner.report.files_imported += 1


async def import_ndjson(
    conn: Connection,
    path: Path,
    report: Report,
    *,
    dry_run: bool,
    progress: Callable[[int | None], Progress],
    settings: Settings,
) -> None:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    run = _Run(conn, report, dry_run=dry_run)
    extra = extras.Extras(conn, run.cleaner, settings, dry_run=dry_run)
    with path.open("rb") as source:
        lines = _Lines(path, source, report, progress(path.stat().st_size))
        await _NdjsonReader(run, extra, lines).read()


class _FileMismatch(Exception):
    """A file's chunks do not hold what its line says; raised before the upload commits, so
    nothing of the file is stored."""


class _Lines:
    """The export's lines, decoded, with one line of lookahead, so a file's chunks are read as
    its upload pulls them, up to the first line that is not one of them."""

    def __init__(self, path: Path, source: BinaryIO, report: Report, advance: Progress) -> None:
        self.path = path
        self.numbered = enumerate(source, start=1)
        self.report = report
        self.advance = advance
        self.ahead: tuple[str, ndjson.Line] | None = None
        # Until the header is read, a line that does not decode means this is no export.
        self.started = False

    def next(self) -> tuple[str, ndjson.Line] | None:
        """(where, line), or None at the end of the file."""
        if self.ahead is not None:
            item, self.ahead = self.ahead, None
            return item
        for number, raw in self.numbered:
            self.advance(len(raw))
            where = f"{self.path}:{number}"
            if not raw.strip():
                continue
            try:
                return where, ndjson.decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                if not self.started:
                    raise SourceError(f"{where}: not a chatkeep export ({exc})") from exc
                self.report.problem(where, f"not a line of the export format: {exc}", "skipped")
        return None

    def push_back(self, item: tuple[str, ndjson.Line]) -> None:
        self.ahead = item

    def next_of(self, kind: type[L], belongs: Callable[[L], bool]) -> tuple[str, L] | None:
        """The next line if it is a ``kind`` line that ``belongs``; else None, and that line
        stays unread."""
        item = self.next()
        if item is None:
            return None
        where, line = item
        if isinstance(line, kind) and belongs(line):
            return where, line
        self.push_back(item)
        return None

    def next_chunk(self, file_id: UUID) -> ndjson.FileChunkLine | None:
        """The next line if it is a chunk of file ``file_id``."""
        item = self.next_of(ndjson.FileChunkLine, lambda chunk: chunk.file_id == file_id)
        return None if item is None else item[1]


class _NdjsonReader:
    def __init__(self, run: _Run, extra: extras.Extras, lines: _Lines) -> None:
        self.run = run
        self.extra = extra
        self.lines = lines
        self.current: ndjson.ConversationLine | None = None
        self.location = ""
        self.messages: list[MessageRow] = []
        self.end: ndjson.End | None = None
        self.prompt_versions = 0
        self.files = 0

    async def read(self) -> None:
        first = self.lines.next()
        where = first[0] if first else str(self.lines.path)
        if first is None or not isinstance(first[1], ndjson.Header):
            raise SourceError(f"{where}: not a chatkeep export (no header line first)")
        if first[1].version not in ndjson.READABLE_VERSIONS:
            raise SourceError(f"{where}: export format version {first[1].version} is unknown")
        self.lines.started = True
        while (item := self.lines.next()) is not None:
            await self._line(*item)
        await self._finish()

    async def _line(self, where: str, record: ndjson.Line) -> None:
        if isinstance(record, ndjson.ConversationLine):
            await self._finish_conversation()
            self.current, self.location = record, where
        elif isinstance(record, ndjson.MessageLine):
            self._message(record, where)
        elif isinstance(record, ndjson.FileLine):
            await self._files(record, where)
        elif isinstance(record, ndjson.PromptVersionLine):
            await self._finish_conversation()
            await self._prompt_version(record)
        elif isinstance(record, ndjson.End):
            self.end = record
        else:
            tag = type(record).__struct_config__.tag
            self.run.report.problem(where, f"a {tag} line out of place", "skipped")

    def _message(self, record: ndjson.MessageLine, where: str) -> None:
        if self.current is None or record.conversation_id != self.current.id:
            self.run.report.problem(where, "message outside its conversation", "skipped")
            return
        cleaner = self.run.cleaner
        role, source_role = cleaner.role(record.role, where)
        metadata = record.metadata
        if source_role is not None:
            metadata = json_raw(
                {SOURCE_ROLE_KEY: source_role, **cleaner.metadata(bytes(metadata), where)}
            )
        self.messages.append(
            MessageRow(
                conversation_id=record.conversation_id,
                seq=record.seq,
                id=record.id,
                role=role,
                content=cleaner.text(record.content, where, "content") or "",
                topic=cleaner.text(record.topic, where, "topic"),
                metadata=metadata,
                created_at=record.created_at,
                external_id=cleaner.external_id(record.external_id, where, "external_id"),
                tokens=record.tokens,
            )
        )

    def _take_conversation(self) -> Conversation | None:
        """The conversation read so far, with its messages, ready to load; None when there is
        none or it repeats one already read (reported)."""
        line, self.current = self.current, None
        if line is None:
            return None
        messages, self.messages = self.messages, []
        if line.id in self.run.seen:
            self.run.report.problem(self.location, f"conversation {line.id} repeated", "skipped")
            return None
        self.run.seen.add(line.id)
        drop_repeated_external_ids(self.run.cleaner, messages, self.location)
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
            external_id=self.run.cleaner.external_id(
                line.external_id, self.location, "external_id"
            ),
            version=line.version,
            expires_at=line.expires_at,
        )
        return Conversation(row, messages, self.location)

    async def _finish_conversation(self) -> None:
        conversation = self._take_conversation()
        if conversation is not None:
            await self.run.loader.add(conversation)

    async def _files(self, first: ndjson.FileLine, where: str) -> None:
        """The current conversation's files, from its first file line to the last: written in
        the transaction that creates the conversation, and only if it does (README)."""
        if self.current is None or first.conversation_id != self.current.id:
            self.files += 1
            self.run.report.problem(where, "file outside its conversation", "skipped")
            self._skip_chunks(first.id)
            return
        conversation = self._take_conversation()
        async with contextlib.AsyncExitStack() as stack:
            created = conversation is not None and await stack.enter_async_context(
                self.run.loader.with_rows(conversation)
            )
            item: tuple[str, ndjson.FileLine] | None = (where, first)
            while item is not None:
                line_where, line = item
                self.files += 1
                if created:
                    await self._file(line, line_where)
                self._skip_chunks(line.id)
                item = self.lines.next_of(
                    ndjson.FileLine, lambda file: file.conversation_id == first.conversation_id
                )

    async def _file(self, line: ndjson.FileLine, where: str) -> None:
        """One file restored exactly: its id, name, type and time, its bytes verified against
        the line's size and SHA-256 before they are committed."""
        try:
            stored = await self.extra.file(
                line.conversation_id,
                file_id=line.id,
                filename=line.filename,
                content_type=line.content_type,
                pieces=self._chunks(line),
                location=where,
            )
        except _FileMismatch as exc:
            self.run.report.mismatch(where, str(exc))
            return
        if stored:
            self.run.report.files_imported += 1
            if not self.run.dry_run:
                await transfer.restore_file(
                    self.run.conn,
                    conversation_id=line.conversation_id,
                    file_id=line.id,
                    created_at=line.created_at,
                    metadata=self._file_metadata(line, where),
                )

    def _file_metadata(self, line: ndjson.FileLine, where: str) -> msgspec.Raw:
        """The line's metadata when it is a JSON object (files_metadata_object), else {}."""
        if bytes(line.metadata).lstrip().startswith(b"{"):
            return line.metadata
        self.run.report.problem(where, "file metadata is not an object; stored as {}", "fixed")
        return ndjson.EMPTY_OBJECT

    async def _chunks(self, line: ndjson.FileLine) -> AsyncIterator[bytes]:
        """The bytes of the file_chunk lines after the file's line; _FileMismatch after the
        last one when they are not what the line says."""
        size = 0
        sha256 = hashlib.sha256()
        while (chunk := self.lines.next_chunk(line.id)) is not None:
            size += len(chunk.data)
            sha256.update(chunk.data)
            yield chunk.data
        if (size, sha256.hexdigest()) != (line.size, line.sha256):
            raise _FileMismatch(
                f"file {line.id}: the export line says {line.size} bytes with SHA-256 "
                f"{line.sha256}; its chunks hold {size} bytes with SHA-256 {sha256.hexdigest()}"
            )

    def _skip_chunks(self, file_id: UUID) -> None:
        """What is left of a file's chunks: all of a file not restored, the rest of one whose
        upload stopped (at a limit)."""
        while self.lines.next_chunk(file_id) is not None:
            pass

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

    async def _finish(self) -> None:
        await self._finish_conversation()
        await self.run.loader.flush()
        report = self.run.report
        where = str(self.lines.path)
        if self.end is None:
            report.mismatch(where, "the export is truncated: it has no end line")
            return
        end = self.end
        counted = (end.conversations, end.messages, end.prompt_versions, end.files)
        held = (report.conversations_read, report.messages_read, self.prompt_versions, self.files)
        if counted != held:
            report.mismatch(
                where,
                "the end line counts {} conversations, {} messages, {} prompt versions, {} "
                "files; the file holds {}, {}, {}, {}".format(*counted, *held),
            )
