"""Importers and exporter against real SQLite files, JSON directories and PostgreSQL, checked
row by row: odd sources, idempotent re-runs, crash recovery, verification and round trips."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from service.cli import main
from service.store.files import CHUNK_SIZE
from service.transfer import extras, loader
from service.transfer.cleaning import ID_NAMESPACE

HUGE = "x" * (3 * 1024 * 1024)


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def chatkeep(*argv: str) -> int:
    return main(list(argv))


def make_sqlite(path: Path, session_column: str = "session_id") -> Path:
    db = sqlite3.connect(path)
    db.executescript(
        f"""
        CREATE TABLE sessions (id TEXT, title TEXT, created_at TEXT, updated_at TEXT,
                               metadata TEXT);
        CREATE TABLE messages (id INTEGER PRIMARY KEY, {session_column} TEXT, role TEXT,
                               content TEXT, metadata TEXT, created_at TEXT);
        """
    )
    db.executemany(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
        [
            ("s1", "Planning", "2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", '{"app": "x"}'),
            ("s2", "Nothing yet", "2024-05-02 08:00:00", None, None),
            ("s3", "Odd", None, None, "{broken"),
        ],
    )
    db.executemany(
        f"INSERT INTO messages ({session_column}, role, content, metadata, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            ("s1", "user", "second by time", None, "2024-05-01T09:00:02Z"),
            ("s1", "assistant", "first by time", '{"model": "m"}', "2024-05-01T09:00:01Z"),
            ("s1", "user", "tie, earlier row", None, "2024-05-01T09:00:03Z"),
            ("s1", "user", "tie, later row", None, "2024-05-01T09:00:03Z"),
            ("s3", "wizard", "the app's own role", None, None),
            ("s3", "Human", "aliased role", None, None),
            ("s3", "user", "nul\x00inside", "[1]", "not a time"),
            ("s3", "assistant", HUGE, None, None),
            ("lost", "user", "no session row", None, "2024-05-03T00:00:00Z"),
        ],
    )
    db.execute(
        f"INSERT INTO messages ({session_column}, role, content) "
        "VALUES ('s3', 'user', CAST(X'6361666580FF' AS TEXT))"
    )
    db.commit()
    db.close()
    return path


def stored(db: psycopg.Connection) -> dict[str | None, list[tuple[Any, ...]]]:
    """title -> [(seq, role, content, metadata)] straight from PostgreSQL."""
    rows = db.execute(
        "SELECT c.title, m.seq, m.role, m.content, m.metadata FROM conversations c "
        "LEFT JOIN messages m ON m.conversation_id = c.id ORDER BY c.title, m.seq"
    ).fetchall()
    result: dict[str | None, list[tuple[Any, ...]]] = {}
    for title, *message in rows:
        result.setdefault(title, [])
        if message[0] is not None:
            result[title].append(tuple(message))
    return result


def counts(db: psycopg.Connection) -> tuple[int, int]:
    row = db.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_sqlite_import_row_by_row(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_sqlite(tmp_path / "memory.db")
    assert chatkeep("import", "sqlite", str(source)) == 0
    out, err = capsys.readouterr()
    assert "verified 4 conversations against PostgreSQL: all match" in out
    assert "bad rows: 5 fixed, 0 skipped" in out
    assert "wizard" not in err  # a role name: kept as it is
    assert "messages row 10: content is not UTF-8" in err
    result = stored(db)
    assert result["Planning"] == [
        (1, "assistant", "first by time", {"model": "m"}),
        (2, "user", "second by time", {}),
        (3, "user", "tie, earlier row", {}),
        (4, "user", "tie, later row", {}),
    ]
    assert result["Nothing yet"] == []
    # Rows without a readable time sort first, by row.
    assert result["Odd"] == [
        (1, "wizard", "the app's own role", {}),
        (2, "user", "aliased role", {}),
        (3, "user", "nulinside", {"_metadata": [1]}),
        (4, "assistant", HUGE, {}),
        (5, "user", "cafe\ufffd\ufffd", {}),
    ]
    assert result[None] == [(1, "user", "no session row", {})]
    conversation = db.execute(
        "SELECT id, metadata, message_count, last_seq, created_at, updated_at FROM conversations "
        "WHERE title = 'Planning'"
    ).fetchone()
    assert conversation is not None
    assert conversation[0] == uuid.uuid5(ID_NAMESPACE, "sqlite\x1fs1")
    assert conversation[1:4] == ({"app": "x"}, 4, 4)
    assert conversation[4].isoformat() == "2024-05-01T09:00:00+00:00"
    odd = db.execute("SELECT metadata FROM conversations WHERE title = 'Odd'").fetchone()
    assert odd == ({"_raw_metadata": "{broken"},)
    # Counted by the import for ASCII content and by the insert trigger for the rest, by one rule.
    tokens = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE tokens = estimate_tokens(content)), "
        "count(*) FILTER (WHERE octet_length(content) > char_length(content)) FROM messages"
    ).fetchone()
    assert tokens is not None
    assert tokens[0] == tokens[1]
    assert tokens[2] > 0


def test_running_an_import_twice_creates_nothing_new(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_sqlite(tmp_path / "memory.db")
    assert chatkeep("import", "sqlite", str(source)) == 0
    before = db.execute("SELECT id, seq, content FROM messages ORDER BY 1, 2").fetchall()
    assert chatkeep("import", "sqlite", str(source)) == 0
    assert "imported 0 conversations, 0 messages; 4 already present" in capsys.readouterr().out
    assert db.execute("SELECT id, seq, content FROM messages ORDER BY 1, 2").fetchall() == before


def test_dry_run_writes_nothing(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert chatkeep("import", "sqlite", "--dry-run", str(make_sqlite(tmp_path / "m.db"))) == 0
    assert "would import 4 conversations, 10 messages" in capsys.readouterr().out
    assert counts(db) == (0, 0)


def test_columns_are_mapped_with_options(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_sqlite(tmp_path / "chats.db", session_column="chat_ref")
    assert chatkeep("import", "sqlite", str(source)) == 2
    assert "--map message.session_id=COLUMN" in capsys.readouterr().err
    assert chatkeep("import", "sqlite", "--map", "message.session_id=chat_ref", str(source)) == 0
    assert counts(db) == (4, 10)


def test_a_crash_mid_import_leaves_whole_conversations_and_a_rerun_finishes(
    env: str, db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_sqlite(tmp_path / "memory.db")
    monkeypatch.setattr(loader, "BATCH_MESSAGES", 1)  # one conversation per transaction
    real_write = loader.Loader._write
    batches = 0

    async def crash_on_third(self: loader.Loader, batch: list[Any]) -> set[uuid.UUID]:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C, or the machine going away
        return await real_write(self, batch)

    monkeypatch.setattr(loader.Loader, "_write", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        chatkeep("import", "sqlite", str(source))
    assert counts(db) == (3, 9)  # two whole batches, nothing of the third
    partial = db.execute(
        "SELECT count(*) FROM conversations c WHERE message_count <> "
        "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
    ).fetchone()
    assert partial == (0,)
    monkeypatch.setattr(loader.Loader, "_write", real_write)
    assert chatkeep("import", "sqlite", str(source)) == 0
    assert counts(db) == (4, 10)


def test_verification_fails_when_postgresql_disagrees(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_sqlite(tmp_path / "memory.db")
    assert chatkeep("import", "sqlite", str(source)) == 0
    db.execute("UPDATE messages SET content = 'tampered' WHERE content = 'tie, later row'")
    assert chatkeep("import", "sqlite", str(source)) == 1
    out, err = capsys.readouterr()
    assert "VERIFICATION FAILED" in err
    assert "1 MISMATCHES" in out


def test_sqlite_messages_come_out_in_the_order_of_their_instants(
    env: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    """created_at as SQLite's CURRENT_TIMESTAMP writes it, as Python's isoformat() writes it,
    with another zone, and as epoch seconds or milliseconds (numbers or text): by text (or by
    SQLite's type order) these rows would come out in another order."""
    source = tmp_path / "mixed.db"
    with sqlite3.connect(source) as sqlite_db:
        sqlite_db.executescript(
            "CREATE TABLE sessions (id TEXT, title TEXT);"
            "CREATE TABLE messages (id TEXT, session_id TEXT, role TEXT, content TEXT,"
            " created_at);"  # no type: numbers stay numbers
            "INSERT INTO sessions VALUES ('s', 'Mixed');"
        )
        sqlite_db.executemany(
            "INSERT INTO messages VALUES (?, 's', 'user', ?, ?)",
            [
                ("m-c", "09:00:05, earlier row", "2024-03-01 09:00:05"),
                ("m-a", "09:00:00", "2024-03-01T09:00:00.000000+00:00"),
                ("m-b", "09:00:02", 1709283602),
                ("m-d", "09:00:06", "2024-03-01T10:00:06+01:00"),
                ("m-e", "09:00:07", 1709283607000),
                ("m-c2", "09:00:05, later row", "2024-03-01 09:00:05"),
                ("m-a2", "09:00:01", "1709283601"),
                ("m-f", "09:00:08.5", 1709283608.5),
                ("m-0", "no time", None),
            ],
        )
    assert chatkeep("import", "sqlite", str(source)) == 0
    rows = db.execute(
        "SELECT seq, content, external_id, created_at FROM messages ORDER BY seq"
    ).fetchall()
    assert [row[1] for row in rows] == [
        "no time",
        "09:00:00",
        "09:00:01",
        "09:00:02",
        "09:00:05, earlier row",
        "09:00:05, later row",
        "09:00:06",
        "09:00:07",
        "09:00:08.5",
    ]
    assert [row[2] for row in rows] == [
        "m-0",
        "m-a",
        "m-a2",
        "m-b",
        "m-c",
        "m-c2",
        "m-d",
        "m-e",
        "m-f",
    ]
    times = [row[3] for row in rows[1:]]
    assert times == sorted(times)
    assert times[0].isoformat() == "2024-03-01T09:00:00+00:00"
    assert times[-1].isoformat() == "2024-03-01T09:00:08.500000+00:00"


def test_every_role_is_kept_and_no_message_is_lost_for_its_role(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "roles.db"
    with sqlite3.connect(source) as sqlite_db:
        sqlite_db.executescript(
            "CREATE TABLE sessions (id TEXT);"
            "CREATE TABLE messages (session_id TEXT, role TEXT, content TEXT, metadata TEXT);"
            "INSERT INTO sessions VALUES ('s');"
        )
        sqlite_db.executemany(
            "INSERT INTO messages VALUES ('s', ?, ?, ?)",
            [
                ("Human", "alias", None),
                (" Narrator ", "the app's own, lowercased", None),
                ("tool_call", "the app's own", None),
                ("Tool Call", "no role name", '{"k": 1}'),
                ("r" * 40, "too long", None),
                (None, "no role", None),
            ],
        )
    assert chatkeep("import", "sqlite", str(source)) == 0
    out, err = capsys.readouterr()
    assert "bad rows: 3 fixed, 0 skipped" in out
    assert (
        "messages row 4: role 'Tool Call' is not a role name; stored as 'unknown', the "
        "source's role in metadata _source_role (fixed)"
    ) in err
    assert "messages row 6: no role; stored as 'unknown' (fixed)" in err
    assert db.execute("SELECT seq, role, metadata FROM messages ORDER BY seq").fetchall() == [
        (1, "user", {}),
        (2, "narrator", {}),
        (3, "tool_call", {}),
        (4, "unknown", {"k": 1, "_source_role": "Tool Call"}),
        (5, "unknown", {"_source_role": "r" * 40}),
        (6, "unknown", {}),
    ]


def test_source_ids_are_kept_as_external_ids(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_sqlite(tmp_path / "memory.db")
    given = "A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5"  # a UUID, as the source writes it
    with sqlite3.connect(source) as sqlite_db:
        sqlite_db.execute("INSERT INTO sessions (id, title) VALUES (?, 'UUID id')", (given,))
        sqlite_db.execute(
            "INSERT INTO messages (session_id, role, content) VALUES (?, 'user', 'hi')", (given,)
        )
    assert chatkeep("import", "sqlite", str(source)) == 0
    conversations = db.execute(
        "SELECT external_id, id, title FROM conversations ORDER BY external_id"
    ).fetchall()
    assert conversations == [
        (given, uuid.UUID(given), "UUID id"),  # the id is the UUID; the text is kept too
        ("lost", uuid.uuid5(ID_NAMESPACE, "sqlite\x1flost"), None),
        ("s1", uuid.uuid5(ID_NAMESPACE, "sqlite\x1fs1"), "Planning"),
        ("s2", uuid.uuid5(ID_NAMESPACE, "sqlite\x1fs2"), "Nothing yet"),
        ("s3", uuid.uuid5(ID_NAMESPACE, "sqlite\x1fs3"), "Odd"),
    ]
    planning = db.execute(
        "SELECT m.external_id, m.content FROM messages m JOIN conversations c "
        "ON c.id = m.conversation_id WHERE c.title = 'Planning' ORDER BY m.seq"
    ).fetchall()
    assert planning == [
        ("2", "first by time"),
        ("1", "second by time"),
        ("3", "tie, earlier row"),
        ("4", "tie, later row"),
    ]
    # A re-run finds everything again (by the UUIDs derived from the same ids).
    assert chatkeep("import", "sqlite", str(source)) == 0
    assert "imported 0 conversations, 0 messages; 5 already present" in capsys.readouterr().out
    # The same ids from another source (its own --id-namespace) belong to other conversations
    # of the same owner (none): those conversations are imported without them. (The UUID id
    # is the same conversation whatever the namespace.)
    assert chatkeep("import", "sqlite", "--id-namespace", "other", str(source)) == 0
    out, err = capsys.readouterr()
    assert "imported 4 conversations, 10 messages; 1 already present" in out
    assert "external id 's1' is another conversation's of the same owner; not kept" in err
    assert counts(db) == (9, 21)
    assert db.execute(
        "SELECT count(*) FROM conversations WHERE external_id IS NOT NULL"
    ).fetchone() == (5,)
    assert chatkeep("import", "sqlite", "--id-namespace", "other", str(source)) == 0
    assert "imported 0 conversations, 0 messages; 5 already present" in capsys.readouterr().out


def test_an_external_id_is_unique_per_owner_not_per_database(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two JSON files of one store with the same id: for different users both keep it, for
    the same user the second does not (and its messages are imported all the same)."""
    root = tmp_path / "store"
    root.mkdir()
    write_json(root / "a.json", {"id": "chat", "user_id": "alice", "messages": []})
    write_json(root / "b.json", {"id": "chat", "user_id": "bob", "messages": []})
    write_json(
        root / "c.json",
        {"id": "chat", "user_id": "bob", "messages": [{"role": "u", "content": "kept"}]},
    )
    assert chatkeep("import", "files", str(root)) == 0
    _, err = capsys.readouterr()
    assert f"{root / 'c.json'}: external id 'chat' is another conversation's" in err
    assert db.execute(
        "SELECT c.user_id, c.external_id, count(m.*) FROM conversations c "
        "LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall() == [("alice", "chat", 0), ("bob", "chat", 0), ("bob", None, 1)]


def write_json(path: Path, document: object) -> None:
    path.write_text(json.dumps(document), encoding="utf-8")


def make_file_store(root: Path) -> Path:
    root.mkdir()
    write_json(
        root / "a.json",
        {
            "id": "chat-a",
            "title": "From files",
            "user_id": "alice",
            "created_at": "2024-06-01T12:00:00+02:00",
            "theme": "dark",
            "messages": [
                {"role": "system", "content": "be brief", "id": "m1"},
                {"role": "user", "content": "hi", "timestamp": 1717236000, "lang": "en"},
                {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
                {"role": "user", "content": "dup", "id": "m1"},
            ],
        },
    )
    write_json(root / "b.json", {"chat_history": [], "title": "Empty"})
    write_json(root / "c.json", [{"role": "user", "content": "bare list"}])
    write_json(root / "d.json", {"id": "chat-a", "title": "Same id", "history": []})
    (root / "e.json").write_bytes(b'{"title": "Latin-1 \xe9", "messages": []}')
    (root / "broken.json").write_text("{not json", encoding="utf-8")
    (root / "a").mkdir()
    (root / "a" / "notes.txt").write_bytes(b"attached to a")
    (root / "a" / "img.png").write_bytes(bytes(range(256)) * 1500)
    (root / "prompts").mkdir()
    (root / "prompts" / "support.md").write_text("You are support.", encoding="utf-8")
    (root / "prompts" / "bad name!.txt").write_text("x", encoding="utf-8")
    return root


def test_file_store_import_keeps_every_field(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_file_store(tmp_path / "store")
    assert chatkeep("import", "files", str(root)) == 0
    out, err = capsys.readouterr()
    assert "2 files" in out
    assert "1 prompt versions" in out
    assert "broken.json: not JSON" in err
    assert "duplicate conversation id 'chat-a'" in err
    assert "duplicate message id 'm1'" in err
    result = stored(db)
    assert result["From files"] == [
        (1, "system", "be brief", {}),
        (2, "user", "hi", {"lang": "en"}),
        (3, "assistant", '[{"type":"text","text":"hello"}]', {}),
        (4, "user", "dup", {}),
    ]
    assert result["Empty"] == []
    assert result["Same id"] == []
    assert result[None] == [(1, "user", "bare list", {})]
    assert "Latin-1 \ufffd" in result
    # The source's ids are external ids; a file without one is known by its name.
    assert "external id 'm1' repeats an earlier message's; not kept" in err
    assert db.execute("SELECT title, external_id FROM conversations ORDER BY 1").fetchall() == [
        ("Empty", "b"),
        ("From files", "chat-a"),
        ("Latin-1 \ufffd", "e"),
        ("Same id", "chat-a"),  # the same id, another owner (none; From files is alice's)
        (None, "c"),
    ]
    assert db.execute(
        "SELECT m.external_id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.title = 'From files' ORDER BY m.seq"
    ).fetchall() == [("m1",), (None,), (None,), (None,)]
    row = db.execute(
        "SELECT user_id, metadata, created_at FROM conversations WHERE title = 'From files'"
    ).fetchone()
    assert row is not None
    assert row[:2] == ("alice", {"theme": "dark"})
    assert row[2].isoformat() == "2024-06-01T10:00:00+00:00"
    attached = db.execute(
        "SELECT f.filename, f.content_type, f.size FROM files f JOIN conversations c "
        "ON c.id = f.conversation_id WHERE c.title = 'From files' ORDER BY 1"
    ).fetchall()
    assert attached == [("img.png", "image/png", 384000), ("notes.txt", "text/plain", 13)]
    prompt = db.execute("SELECT name, version, content FROM prompt_versions").fetchall()
    assert prompt == [("support", 1, "You are support.")]
    assert chatkeep("import", "files", str(root)) == 0
    assert "imported 0 conversations" in capsys.readouterr().out
    assert db.execute("SELECT count(*) FROM files").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM prompt_versions").fetchone() == (1,)


def test_imported_files_and_prompts_meet_the_api_limits(
    env: str,
    db: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attachments and prompt files go through the upload and prompt operations: one over a
    limit is reported and skipped, in a dry run too, and the rest is imported."""
    root = make_file_store(tmp_path / "store")  # img.png: 384,000 bytes; notes.txt: 13
    (root / "prompts" / "long.txt").write_text("x" * 2000, encoding="utf-8")
    monkeypatch.setenv("CHATKEEP_MAX_FILE_BYTES", "100000")
    monkeypatch.setenv("CHATKEEP_MAX_CONTENT_BYTES", "1000")
    for dry_run in (["--dry-run"], []):
        assert chatkeep("import", "files", str(root), *dry_run) == 0
        out, err = capsys.readouterr()
        assert "img.png: the file is over the limit of 100000 bytes (skipped)" in err
        assert "long.txt: content is 2000 bytes; the limit is 1000 (skipped)" in err
        assert "1 prompt versions, 1 files" in out
    assert db.execute("SELECT filename FROM files").fetchall() == [("notes.txt",)]
    assert db.execute("SELECT name FROM prompt_versions").fetchall() == [("support",)]
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (1,)


def test_export_and_import_round_trip_exactly(
    env: str, db: psycopg.Connection, tmp_path: Path, empty_database_url: str
) -> None:
    assert chatkeep("import", "sqlite", str(make_sqlite(tmp_path / "m.db"))) == 0
    db.execute("DELETE FROM messages WHERE content = 'second by time'")  # a gap in seq
    db.execute(
        "UPDATE conversations SET visitor_hash = sha256('visitor'), "
        "message_count = message_count - 1 WHERE title = 'Planning'"
    )
    db.execute("INSERT INTO prompts (name, latest_version) VALUES ('p', 1)")
    db.execute("INSERT INTO prompt_versions (name, version, content) VALUES ('p', 1, 'text')")
    first = tmp_path / "first.ndjson"
    assert chatkeep("export", "--output", str(first)) == 0
    again = tmp_path / "again.ndjson"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", empty_database_url)
        assert chatkeep("migrate") == 0
        assert chatkeep("import", "ndjson", str(first)) == 0
        assert chatkeep("import", "ndjson", str(first)) == 0  # idempotent too
        assert chatkeep("export", "--output", str(again)) == 0
    skip_header = slice(1, None)
    assert (
        first.read_text().splitlines()[skip_header] == again.read_text().splitlines()[skip_header]
    )
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    planning = next(line for line in lines if line.get("title") == "Planning")
    assert (planning["message_count"], planning["last_seq"]) == (3, 4)
    assert planning["owner"] == hashlib.sha256(b"visitor").hexdigest()


def test_a_per_user_export_holds_only_that_user(
    env: str, client_db_user: None, tmp_path: Path
) -> None:
    out = tmp_path / "alice.ndjson"
    assert chatkeep("export", "--user", "alice", "--output", str(out)) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds == ["header", "conversation", "message", "end"]
    assert lines[1]["user_id"] == "alice"
    assert lines[-1] == {
        "type": "end",
        "conversations": 1,
        "messages": 1,
        "prompt_versions": 0,
        "files": 0,
    }


@pytest.fixture
def client_db_user(db: psycopg.Connection) -> None:
    for user, text in (("alice", "mine"), ("bob", "his")):
        conversation_id = uuid.uuid4()
        db.execute(
            "INSERT INTO conversations (id, user_id, message_count, last_seq) "
            "VALUES (%s, %s, 1, 1)",
            (conversation_id, user),
        )
        db.execute(
            "INSERT INTO messages (conversation_id, seq, id, role, content) "
            "VALUES (%s, 1, %s, 'user', %s)",
            (conversation_id, uuid.uuid4(), text),
        )


def test_a_truncated_or_foreign_export_is_refused(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], client_db_user: None
) -> None:
    dump = tmp_path / "dump.ndjson"
    assert chatkeep("export", "--output", str(dump)) == 0
    cut = tmp_path / "cut.ndjson"
    cut.write_text("\n".join(dump.read_text().splitlines()[:-1]) + "\n")
    assert chatkeep("import", "ndjson", str(cut)) == 1
    assert "truncated" in capsys.readouterr().err
    foreign = tmp_path / "foreign.ndjson"
    foreign.write_text('{"hello": "world"}\n')
    assert chatkeep("import", "ndjson", str(foreign)) == 2


@pytest.mark.parametrize("namespace", [[], ["--id-namespace", "crm-2024"]])
def test_a_repeated_sqlite_session_id_is_imported_once(
    env: str,
    db: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    namespace: list[str],
) -> None:
    source = make_sqlite(tmp_path / "memory.db")
    with sqlite3.connect(source) as sqlite_db:
        sqlite_db.execute("INSERT INTO sessions (id, title) VALUES ('s1', 'Planning again')")
    assert chatkeep("import", "sqlite", *namespace, str(source)) == 0
    assert "duplicate session id" in capsys.readouterr().err
    assert counts(db) == (4, 10)


SECRET = b"outside the import directory"


def test_the_files_importer_reads_nothing_through_links_or_special_files(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "dir" / "secret.txt").write_bytes(SECRET)
    write_json(outside / "chat.json", [{"role": "user", "content": SECRET.decode()}])
    root = make_file_store(tmp_path / "store")
    (root / "a" / "env").symlink_to(outside / "secret.txt")  # an attachment
    (root / "a" / "sub").symlink_to(outside / "dir")  # a directory among the attachments
    os.mkfifo(root / "a" / "pipe")  # would block a reader forever
    (root / "linked.json").symlink_to(outside / "chat.json")  # a conversation file
    write_json(root / "f.json", {"id": "chat-f", "messages": []})
    (root / "f").symlink_to(outside / "dir")  # a conversation's attachment directory
    (root / "prompts" / "leak.txt").symlink_to(outside / "secret.txt")
    assert chatkeep("import", "files", str(root)) == 0
    out, err = capsys.readouterr()
    for path, what in [
        (root / "a" / "env", "a symbolic link"),
        (root / "a" / "sub", "a symbolic link"),
        (root / "a" / "pipe", "a FIFO"),
        (root / "linked.json", "a symbolic link"),
        (root / "f", "a symbolic link"),
        (root / "prompts" / "leak.txt", "a symbolic link"),
    ]:
        assert f"{path}: {what}; not read (skipped)" in err
    assert "2 files" in out
    leaked = db.execute(
        "SELECT (SELECT count(*) FROM blob_chunks WHERE position(%(s)s IN data) > 0)"
        " + (SELECT count(*) FROM messages WHERE content = %(t)s)"
        " + (SELECT count(*) FROM prompt_versions WHERE content = %(t)s)",
        {"s": SECRET, "t": SECRET.decode()},
    ).fetchone()
    assert leaked == (0,)
    assert sorted(row[0] for row in db.execute("SELECT filename FROM files")) == [
        "img.png",
        "notes.txt",
    ]
    assert db.execute("SELECT count(*) FROM conversations WHERE title IS NULL").fetchone() == (2,)


def test_attachments_are_never_added_to_a_conversation_that_existed_before(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a.json's id is 'chat-a'; someone's conversation already has the id derived from it."""
    existing = uuid.uuid5(ID_NAMESPACE, "files\x1fchat-a")
    db.execute(
        "INSERT INTO conversations (id, user_id, title) VALUES (%s, 'bob', 'Bob''s')", (existing,)
    )
    root = make_file_store(tmp_path / "store")
    assert chatkeep("import", "files", str(root)) == 1  # its messages differ from the source
    out = capsys.readouterr().out
    assert "1 already present" in out
    assert "0 files" in out
    assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)


def test_a_crash_while_attaching_leaves_no_conversation_without_its_files(
    env: str,
    db: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = make_file_store(tmp_path / "store")
    real_attachment = extras.Extras.attachment
    calls = 0

    async def crash_on_second(self: extras.Extras, *args: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return await real_attachment(self, *args)

    monkeypatch.setattr(extras.Extras, "attachment", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        chatkeep("import", "files", str(root))
    # The conversation whose files were being attached is not there: it commits with them.
    assert "From files" not in stored(db)
    assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
    monkeypatch.setattr(extras.Extras, "attachment", real_attachment)
    capsys.readouterr()
    assert chatkeep("import", "files", str(root)) == 0
    assert "2 files" in capsys.readouterr().out
    assert chatkeep("import", "files", str(root)) == 0
    assert "0 files" in capsys.readouterr().out
    attached = db.execute(
        "SELECT f.filename FROM files f JOIN conversations c ON c.id = f.conversation_id "
        "WHERE c.title = 'From files' ORDER BY 1"
    ).fetchall()
    assert attached == [("img.png",), ("notes.txt",)]


def file_rows(url: str) -> list[tuple[Any, ...]]:
    """Every file with its bytes, straight from PostgreSQL."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT f.conversation_id, f.id, f.filename, f.content_type, f.size, f.created_at, "
            "f.metadata, b.sha256, (SELECT string_agg(data, ''::bytea ORDER BY n) FROM blob_chunks "
            "WHERE blob_id = b.id) FROM files f JOIN blobs b ON b.id = f.blob_id ORDER BY 1, 2"
        ).fetchall()


def external_ids(url: str) -> list[tuple[Any, ...]]:
    """(external id, version, [message external ids]) of every conversation."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.external_id, c.version, array_agg(m.external_id ORDER BY m.seq) "
            "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id "
            "GROUP BY c.id ORDER BY c.id"
        ).fetchall()
    return [(external_id, version, [(m,) for m in ids]) for external_id, version, ids in rows]


def blob_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM blobs").fetchone()
    assert row is not None
    return int(row[0])


def store_with_files(root: Path) -> Path:
    """make_file_store, with a file of several chunks and the same content in two
    conversations (stored once)."""
    make_file_store(root)
    (root / "a" / "deep").mkdir()
    (root / "a" / "deep" / "big.bin").write_bytes(os.urandom(5 * CHUNK_SIZE + 123))
    (root / "c").mkdir()
    (root / "c" / "copy.png").write_bytes((root / "a" / "img.png").read_bytes())
    (root / "c" / "empty.txt").write_bytes(b"")
    return root


def exported(env: str, tmp_path: Path) -> Path:
    """A full export (v4) of the file store above, its files with metadata, a conversation at
    version 7."""
    assert chatkeep("import", "files", str(store_with_files(tmp_path / "store"))) == 0
    with psycopg.connect(env, autocommit=True) as conn:
        conn.execute("UPDATE files SET metadata = jsonb_build_object('name', filename)")
        conn.execute(
            "UPDATE conversations SET version = 7 "
            "WHERE external_id = 'chat-a' AND user_id = 'alice'"
        )
    dump = tmp_path / "dump.ndjson"
    assert chatkeep("export", "--output", str(dump)) == 0
    return dump


def test_an_export_with_files_round_trips_exactly(
    env: str, tmp_path: Path, empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = exported(env, tmp_path)
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert lines[0]["version"] == 4
    assert lines[-1]["files"] == 5
    # Alice's: d.json's conversation (no owner, no messages) has the external id chat-a too.
    chat_a = next(
        line
        for line in lines
        if line.get("external_id") == "chat-a" and line.get("user_id") == "alice"
    )
    assert (chat_a["type"], chat_a["version"]) == ("conversation", 7)
    assert {"type": "message", "external_id": "m1"}.items() <= next(
        line
        for line in lines
        if line["type"] == "message"
        and line["seq"] == 1
        and line["conversation_id"] == chat_a["id"]
    ).items()
    assert all(
        line["metadata"] == {"name": line["filename"]} for line in lines if line["type"] == "file"
    )
    assert [line["type"] for line in lines].count("file_chunk") == 1 + 2 + 6 + 2 + 0
    again = tmp_path / "again.ndjson"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", empty_database_url)
        assert chatkeep("migrate") == 0
        capsys.readouterr()
        assert chatkeep("import", "ndjson", "--dry-run", str(dump)) == 0
        out = capsys.readouterr().out
        assert "would import 5 conversations, 5 messages" in out
        assert "5 files" in out
        assert file_rows(empty_database_url) == []
        assert chatkeep("import", "ndjson", str(dump)) == 0
        assert "5 files" in capsys.readouterr().out
        assert chatkeep("import", "ndjson", str(dump)) == 0  # a re-run adds nothing
        out = capsys.readouterr().out
        assert "imported 0 conversations, 0 messages" in out
        assert "0 files" in out
        again.touch(mode=0o644)
        assert chatkeep("export", "--output", str(again)) == 0
    assert stat.S_IMODE(again.stat().st_mode) == 0o600
    assert file_rows(env) == file_rows(empty_database_url)
    assert len(file_rows(env)) == 5
    assert external_ids(env) == external_ids(empty_database_url)
    assert ("chat-a", 7, [("m1",), (None,), (None,), (None,)]) in external_ids(env)
    assert blob_count(empty_database_url) == blob_count(env) == 4  # copy.png is img.png
    skip_header = slice(1, None)
    assert dump.read_text().splitlines()[skip_header] == again.read_text().splitlines()[skip_header]


@pytest.mark.parametrize("tamper", ["chunk", "size"])
def test_a_tampered_file_fails_verification_and_is_not_stored(
    env: str,
    tmp_path: Path,
    empty_database_url: str,
    capsys: pytest.CaptureFixture[str],
    tamper: str,
) -> None:
    dump = exported(env, tmp_path)
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    target = next(line for line in lines if line.get("filename") == "big.bin")
    if tamper == "size":
        target["size"] -= 1
    else:
        chunk = next(
            line
            for line in lines
            if line["type"] == "file_chunk" and line["file_id"] == target["id"]
        )
        data = bytearray(base64.b64decode(chunk["data"]))
        data[7] ^= 0xFF
        chunk["data"] = base64.b64encode(data).decode()
    dump.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", empty_database_url)
        assert chatkeep("migrate") == 0
        capsys.readouterr()
        assert chatkeep("import", "ndjson", str(dump)) == 1
    _, err = capsys.readouterr()
    assert f"VERIFICATION FAILED: file {target['id']}" in err
    restored = [row[2] for row in file_rows(empty_database_url)]
    assert "big.bin" not in restored
    assert len(restored) == 4


def test_an_exported_file_named_or_typed_as_no_upload_may_be_is_skipped(
    env: str, tmp_path: Path, empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names and types are sent back in download headers: the API's rules hold for imports."""
    dump = exported(env, tmp_path)
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    files = [line for line in lines if line["type"] == "file"]
    files[0]["filename"] = "x\r\nSet-Cookie: a=b"
    files[1]["content_type"] = "text/html\r\nSet-Cookie: a=b"
    dump.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", empty_database_url)
        assert chatkeep("migrate") == 0
        capsys.readouterr()
        assert chatkeep("import", "ndjson", str(dump)) == 0
    out, err = capsys.readouterr()
    assert "bad filename: control characters are not allowed (skipped)" in err
    assert "bad content_type: not a media type" in err
    assert "3 files" in out
    restored = {row[1] for row in file_rows(empty_database_url)}
    assert len(restored) == 3
    assert not restored & {uuid.UUID(files[0]["id"]), uuid.UUID(files[1]["id"])}


CONVERSATION = "6038f43a-f2df-5b9b-ad8a-92cfa10adb49"


def export_lines(version: int) -> list[dict[str, Any]]:
    """The example of docs/EXPORT_FORMAT.md, in what ``version`` has."""
    return [
        {
            "type": "header",
            "format": "chatkeep",
            "version": version,
            "exported_at": "2026-11-23T13:28:09.515074Z",
            "user_id": "alice",
            "conversation_id": None,
        },
        {
            "type": "conversation",
            "id": CONVERSATION,
            "user_id": "alice",
            "owner": None,
            "title": "Planning",
            "metadata": {},
            "message_count": 1,
            "last_seq": 1,
            "created_at": "2024-01-01T10:00:00Z",
            "updated_at": "2024-01-01T11:00:00Z",
        },
        {
            "type": "message",
            "conversation_id": CONVERSATION,
            "seq": 1,
            "id": "2f7e4156-6521-5d06-b0ff-b4df28f7858c",
            "role": "user",
            "content": "hello",
            "topic": None,
            "metadata": {},
            "created_at": "2024-01-01T10:00:00Z",
        },
        {"type": "end", "conversations": 1, "messages": 1, "prompt_versions": 0}
        | ({"files": 0} if version > 1 else {}),
    ]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_export_still_imports(
    env: str,
    db: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    version: int,
) -> None:
    dump = write_lines(tmp_path / "old.ndjson", export_lines(version))
    assert chatkeep("import", "ndjson", str(dump)) == 0
    assert "all match" in capsys.readouterr().out
    assert stored(db) == {"Planning": [(1, "user", "hello", {})]}
    assert db.execute(
        "SELECT c.external_id, c.version, m.external_id FROM conversations c "
        "JOIN messages m ON m.conversation_id = c.id"
    ).fetchall() == [(None, 1, None)]


def test_an_exports_roles_and_external_ids_are_cleaned_as_any_sources(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-edited export: a role that is no role name, an external id too long, two
    messages with one external id. Every message is imported."""
    lines = export_lines(3)
    conversation, message, end = lines[1], lines[2], lines[3]
    conversation |= {"external_id": "x" * 256, "version": 3, "message_count": 3, "last_seq": 3}
    message |= {"role": "narrator", "external_id": "m"}
    lines[3:3] = [
        message
        | {"seq": 2, "id": str(uuid.uuid4()), "role": "Tool Call", "metadata": {"a": 1}}
        | {"external_id": "m2"},
        message | {"seq": 3, "id": str(uuid.uuid4())},
    ]
    end["messages"] = 3
    dump = write_lines(tmp_path / "edited.ndjson", lines)
    assert chatkeep("import", "ndjson", str(dump)) == 0
    out, err = capsys.readouterr()
    assert "bad rows: 3 fixed, 0 skipped" in out
    assert f"{dump}:2: external_id is over 255 characters; not kept as external_id" in err
    assert f"{dump}:4: role 'Tool Call' is not a role name" in err
    assert f"{dump}:2: message 3: external id 'm' repeats an earlier message's" in err
    assert db.execute("SELECT external_id, version FROM conversations").fetchall() == [(None, 3)]
    assert db.execute(
        "SELECT seq, role, metadata, external_id FROM messages ORDER BY seq"
    ).fetchall() == [
        (1, "narrator", {}, "m"),
        (2, "unknown", {"a": 1, "_source_role": "Tool Call"}, "m2"),
        (3, "narrator", {}, None),
    ]


# The child prints the peak of the memory Python allocated while it exported (tracemalloc: the
# process's peak resident set is set by importing the service, before the export starts).
PEAK_MEMORY = (
    "import sys, tracemalloc\n"
    "from service.cli import main\n"
    "tracemalloc.start()\n"
    "code = main(sys.argv[1:])\n"
    "print(tracemalloc.get_traced_memory()[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)
BIG_CHUNKS = 256  # 64 MiB


def test_an_export_streams_a_large_file_in_constant_memory(
    env: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    """A 64 MiB file is exported holding a few chunks at a time: holding the file would take
    64 MiB, its base64 85 more."""
    conversation_id = uuid.uuid4()
    db.execute("INSERT INTO conversations (id) VALUES (%s)", (conversation_id,))
    blob = db.execute(
        "INSERT INTO blobs (chunk_size) VALUES (%s) RETURNING id", (CHUNK_SIZE,)
    ).fetchone()
    assert blob is not None
    db.execute(
        "INSERT INTO blob_chunks (blob_id, n, data) SELECT %s, n, "
        "decode(repeat(md5(n::text), %s), 'hex') FROM generate_series(0, %s - 1) n",
        (blob[0], CHUNK_SIZE // 16, BIG_CHUNKS),
    )
    db.execute(
        "UPDATE blobs SET size = %s, sha256 = (SELECT sha256(string_agg(data, ''::bytea "
        "ORDER BY n)) FROM blob_chunks WHERE blob_id = %s) WHERE id = %s",
        (BIG_CHUNKS * CHUNK_SIZE, blob[0], blob[0]),
    )
    db.execute(
        "INSERT INTO files (conversation_id, id, blob_id, filename, content_type, size) "
        "VALUES (%s, %s, %s, 'data.bin', 'application/octet-stream', %s)",
        (conversation_id, uuid.uuid4(), blob[0], BIG_CHUNKS * CHUNK_SIZE),
    )
    out = tmp_path / "big.ndjson"
    argv = ["export", "--conversation", str(conversation_id), "--output", str(out)]
    child = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, *argv],
        env={**os.environ, "DATABASE_URL": env},
        capture_output=True,
        text=True,
        check=True,
    )
    peak = int(child.stderr.strip().splitlines()[-1])
    with out.open("rb") as dump:
        kinds = [json.loads(line)["type"] for line in dump]
    assert kinds.count("file_chunk") == BIG_CHUNKS
    assert peak < 16 * 1024 * 1024, peak
