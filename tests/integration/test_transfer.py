"""Importers and exporter against real SQLite files, JSON directories and PostgreSQL, checked
row by row: odd sources, idempotent re-runs, crash recovery, verification and round trips."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from service.cli import main
from service.transfer import loader
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
            ("s3", "wizard", "unknown role", None, None),
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
    assert "bad rows: 5 fixed, 1 skipped" in out
    assert "messages row 5: unknown role 'wizard' (skipped)" in err
    assert "messages row 10: content is not UTF-8" in err
    result = stored(db)
    assert result["Planning"] == [
        (1, "assistant", "first by time", {"model": "m"}),
        (2, "user", "second by time", {}),
        (3, "user", "tie, earlier row", {}),
        (4, "user", "tie, later row", {}),
    ]
    assert result["Nothing yet"] == []
    # Rows without a time sort first (as SQLite orders NULL), then by row.
    assert result["Odd"] == [
        (1, "user", "aliased role", {}),
        (2, "assistant", HUGE, {}),
        (3, "user", "cafe\ufffd\ufffd", {}),
        (4, "user", "nulinside", {"_metadata": [1]}),
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
    assert "would import 4 conversations, 9 messages" in capsys.readouterr().out
    assert counts(db) == (0, 0)


def test_columns_are_mapped_with_options(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_sqlite(tmp_path / "chats.db", session_column="chat_ref")
    assert chatkeep("import", "sqlite", str(source)) == 2
    assert "--map message.session_id=COLUMN" in capsys.readouterr().err
    assert chatkeep("import", "sqlite", "--map", "message.session_id=chat_ref", str(source)) == 0
    assert counts(db) == (4, 9)


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
    assert counts(db) == (3, 8)  # two whole batches, nothing of the third
    partial = db.execute(
        "SELECT count(*) FROM conversations c WHERE message_count <> "
        "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
    ).fetchone()
    assert partial == (0,)
    monkeypatch.setattr(loader.Loader, "_write", real_write)
    assert chatkeep("import", "sqlite", str(source)) == 0
    assert counts(db) == (4, 9)


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
    assert counts(db) == (4, 9)
