"""Conversations from a SQLite conversation-memory database: ``sessions`` and ``messages``
tables (names and columns mappable), messages in the order of the instants their created_at
denote (rows without one first), ties in row order."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

from service.transfer import SourceError
from service.transfer.assemble import SourceConversation, SourceMessage
from service.transfer.cleaning import parse_time

# Field -> column names tried in order when no --map names the column.
SESSION_COLUMNS = {
    "id": ("id", "session_id", "conversation_id", "chat_id", "thread_id"),
    "title": ("title", "name", "summary"),
    "user_id": ("user_id", "user"),
    "metadata": ("metadata", "meta", "extra"),
    "created_at": ("created_at", "created", "timestamp"),
    "updated_at": ("updated_at", "updated", "modified_at"),
}
MESSAGE_COLUMNS = {
    "id": ("id", "message_id"),
    "session_id": ("session_id", "conversation_id", "chat_id", "thread_id"),
    "role": ("role", "sender", "author", "type"),
    "content": ("content", "text", "message", "body"),
    "topic": ("topic",),
    "metadata": ("metadata", "meta", "extra", "additional_kwargs"),
    "created_at": ("created_at", "timestamp", "created", "time"),
}
REQUIRED = {
    ("session", "id"),
    ("message", "session_id"),
    ("message", "role"),
    ("message", "content"),
}


@dataclass(frozen=True)
class Layout:
    """Where each field is in the source: table names and column per field (None: absent)."""

    sessions: str
    messages: str
    session: Mapping[str, str | None]
    message: Mapping[str, str | None]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    rows = db.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
    if not rows:
        raise SourceError(f"no table {table!r} in the database")
    return [row[1].decode() if isinstance(row[1], bytes) else row[1] for row in rows]


def _resolve(
    kind: str,
    table: str,
    available: list[str],
    candidates: Mapping[str, tuple[str, ...]],
    mapping: Mapping[str, str],
) -> dict[str, str | None]:
    resolved: dict[str, str | None] = {}
    for field_name, names in candidates.items():
        chosen = mapping.get(f"{kind}.{field_name}")
        if chosen is not None and chosen not in available:
            raise SourceError(f"--map {kind}.{field_name}={chosen}: no such column in {table}")
        resolved[field_name] = chosen or next((name for name in names if name in available), None)
        if resolved[field_name] is None and (kind, field_name) in REQUIRED:
            raise SourceError(
                f"{table} has no column for {kind}.{field_name} (tried {', '.join(names)}); "
                f"name it with --map {kind}.{field_name}=COLUMN"
            )
    return resolved


def open_layout(
    db: sqlite3.Connection, sessions: str, messages: str, mapping: Mapping[str, str]
) -> Layout:
    unknown = [
        key
        for key in mapping
        if key.partition(".")[2]
        not in {"session": SESSION_COLUMNS, "message": MESSAGE_COLUMNS}.get(
            key.partition(".")[0], {}
        )
    ]
    if unknown:
        raise SourceError(f"--map: unknown field {unknown[0]!r} (session.* or message.*)")
    return Layout(
        sessions,
        messages,
        _resolve("session", sessions, _columns(db, sessions), SESSION_COLUMNS, mapping),
        _resolve("message", messages, _columns(db, messages), MESSAGE_COLUMNS, mapping),
    )


def _select(alias: str, columns: Mapping[str, str | None]) -> str:
    return ", ".join(
        f"{alias}.{_quote(column)}" if column else "NULL" for column in columns.values()
    )


def connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    # Read by one thread at a time, but not always the one that opened it (Loader.load).
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    # Raw bytes: text that is not UTF-8 is fixed by the cleaning rules instead of failing here.
    db.text_factory = bytes
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: not a SQLite database ({exc})") from exc
    return db


def count_messages(db: sqlite3.Connection, layout: Layout) -> int:
    row = db.execute(f"SELECT count(*) FROM {_quote(layout.messages)}").fetchone()
    return int(row[0])


def read(db: sqlite3.Connection, layout: Layout, path: Path) -> Iterator[SourceConversation]:
    """Every session with its messages, then messages whose session row is missing (grouped
    by their session id, so nothing is left behind)."""
    s_id, m_sid = _quote(layout.session["id"] or ""), _quote(layout.message["session_id"] or "")
    # Row order here; time order in _conversation, by the instant a created_at denotes: stores
    # mix formats ("2024-03-01 09:00:05", "2024-03-01T09:00:00.000000+00:00", epoch numbers)
    # whose text order is not their time order.
    sessions = db.execute(
        f"SELECT s.rowid, {_select('s', layout.session)}, m.rowid, "
        f"{_select('m', layout.message)} "
        f"FROM {_quote(layout.sessions)} s "
        f"LEFT JOIN {_quote(layout.messages)} m ON m.{m_sid} = s.{s_id} "
        "ORDER BY s.rowid, m.rowid"
    )
    width = len(layout.session) + 1
    for _, rows in groupby(sessions, key=lambda row: row[0]):
        group = list(rows)
        yield _conversation(path, layout, group[0][:width], [row[width:] for row in group])
    orphans = db.execute(
        f"SELECT m.rowid, {_select('m', layout.message)} FROM {_quote(layout.messages)} m "
        f"WHERE NOT EXISTS (SELECT 1 FROM {_quote(layout.sessions)} s WHERE s.{s_id} = m.{m_sid}) "
        f"ORDER BY m.{m_sid}, m.rowid"
    )
    session_index = list(layout.message).index("session_id") + 1
    for session_id, rows in groupby(orphans, key=lambda row: row[session_index]):
        session_row = (None, session_id, *([None] * (len(layout.session) - 1)))
        yield _conversation(path, layout, session_row, list(rows), orphan=True)


EARLIEST = datetime.min.replace(tzinfo=UTC)


def _time_order(time_index: int) -> Callable[[tuple[object, ...]], tuple[bool, datetime]]:
    """The sort key of message rows (in row order already; the sort is stable): rows without a
    readable time first, then by the instant their time denotes."""

    def key(row: tuple[object, ...]) -> tuple[bool, datetime]:
        instant = parse_time(row[time_index])
        return (instant is not None, instant or EARLIEST)

    return key


def _conversation(
    path: Path,
    layout: Layout,
    session_row: tuple[object, ...],
    message_rows: list[tuple[object, ...]],
    *,
    orphan: bool = False,
) -> SourceConversation:
    session = dict(zip(layout.session, session_row[1:], strict=True))
    where = (
        f"{path}:{layout.messages}[{layout.message['session_id']}={session['id']!r}]"
        if orphan
        else f"{path}:{layout.sessions} row {session_row[0]}"
    )
    messages = []
    for row in sorted(message_rows, key=_time_order(list(layout.message).index("created_at") + 1)):
        if row[0] is None:  # the LEFT JOIN's row for a session without messages
            continue
        fields = dict(zip(layout.message, row[1:], strict=True))
        messages.append(
            SourceMessage(
                location=f"{path}:{layout.messages} row {row[0]}",
                role=fields["role"],
                content=fields["content"],
                id=fields["id"],
                topic=fields["topic"],
                metadata=fields["metadata"],
                created_at=fields["created_at"],
            )
        )
    return SourceConversation(
        location=where,
        id=session["id"],
        title=session["title"],
        user_id=session["user_id"],
        metadata=session["metadata"],
        created_at=session["created_at"],
        updated_at=session["updated_at"],
        messages=messages,
    )
