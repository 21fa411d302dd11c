"""`chatkeep import files --layout`: attachments found where the application keeps them (per
session folders, one file per session, ...), by the conversation's file name, source id or id;
never outside the import directory, never through a link; bad patterns refused up front."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from service.cli import main
from service.transfer.attachment_layout import Layout, LayoutError, attachment_files
from service.transfer.report import Report
from service.transfer.source_tree import SourceTree


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def chatkeep(*argv: str) -> int:
    return main(list(argv))


LAYOUTS = ["--layout", "session_files/{conversation}/*", "--layout", "filled/{conversation}.pdf"]


def write(path: Path, content: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)


def session(root: Path, name: str, source_id: str | None, title: str) -> None:
    document = {"title": title, "messages": [{"role": "user", "content": f"about {title}"}]}
    if source_id is not None:
        document["session_id"] = source_id
    write(root / "sessions" / f"{name}.json", json.dumps(document))


def make_forms_store(root: Path) -> Path:
    """A forms assistant's store: sessions/<n>.json, session_files/<session id>/, filled/."""
    session(root, "s1", "form-1", "First")
    session(root, "s10", "form-10", "Tenth")
    write(root / "session_files" / "form-1" / "passport.png", b"png of form-1")
    write(root / "session_files" / "form-1" / "drafts" / "old.txt", b"deeper: not with '*'")
    write(root / "session_files" / "form-10" / "visa.png", b"png of form-10")
    write(root / "filled" / "form-1.pdf", b"pdf of form-1")
    write(root / "filled" / "form-1-page2.pdf", b"page 2 of form-1")
    write(root / "filled" / "form-10-page1.pdf", b"page 1 of form-10")
    write(root / "filled" / "nobody.pdf", b"no such session")
    # The default layout's folder: not read once layouts are given.
    write(root / "sessions" / "s1" / "default.txt", b"DIR/<name>/")
    return root


def attached(db: psycopg.Connection) -> dict[str, list[str]]:
    """title -> the filenames of its files."""
    rows = db.execute(
        "SELECT c.title, f.filename FROM files f JOIN conversations c ON c.id = f.conversation_id"
        " ORDER BY 1, 2"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for title, filename in rows:
        found.setdefault(title, []).append(filename)
    return found


def test_layouts_find_per_session_folders_and_files(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_forms_store(tmp_path / "store")
    layouts = [
        "--layout",
        "session_files/{conversation}/*",
        "--layout",
        "filled/{conversation}.pdf",
    ]
    assert chatkeep("import", "files", str(root / "sessions"), *layouts) == 0
    assert attached(db) == {}  # below the sessions folder there are none of these
    assert "imported 2 conversations" in capsys.readouterr().out
    db.execute("DELETE FROM conversations")

    # The sessions in the directory's own top level: here the source ids name the folders.
    for path in (root / "sessions").glob("*.json"):
        path.rename(root / path.name)
    layouts += ["--layout", "filled/{conversation}-*.pdf"]
    assert chatkeep("import", "files", str(root), *layouts) == 0
    out = capsys.readouterr().out
    assert "5 files" in out
    assert attached(db) == {
        "First": ["form-1-page2.pdf", "form-1.pdf", "passport.png"],
        "Tenth": ["form-10-page1.pdf", "visa.png"],
    }
    contents = db.execute(
        "SELECT f.filename, b.size FROM files f JOIN blobs b ON b.id = f.blob_id"
        " WHERE f.filename = 'form-1.pdf'"
    ).fetchall()
    assert contents == [("form-1.pdf", len(b"pdf of form-1"))]
    # Run again: nothing new, as with the default layout.
    assert chatkeep("import", "files", str(root), *layouts) == 0
    assert "imported 0 conversations" in capsys.readouterr().out
    assert db.execute("SELECT count(*) FROM files").fetchone() == (5,)


def test_the_default_layout_is_the_folder_named_like_the_file(
    env: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    root = make_forms_store(tmp_path / "store") / "sessions"
    assert chatkeep("import", "files", str(root)) == 0
    assert attached(db) == {"First": ["default.txt"]}


def test_a_conversation_is_known_by_its_file_name_source_id_or_id(
    env: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    chat_id = str(uuid.uuid4())
    write(root / "by-name.json", json.dumps({"title": "By name", "messages": []}))
    write(root / "x.json", json.dumps({"id": "src-7", "title": "By source id", "messages": []}))
    write(root / "y.json", json.dumps({"id": chat_id, "title": "By id", "messages": []}))
    for name in ("by-name", "src-7", chat_id):
        write(root / "uploads" / name / "a" / f"{name}.txt", name)
    assert chatkeep("import", "files", str(root), "--layout", "uploads/{conversation}/") == 0
    assert attached(db) == {
        "By name": ["by-name.txt"],
        "By source id": ["src-7.txt"],
        "By id": [f"{chat_id}.txt"],
    }


def test_a_name_that_is_no_plain_folder_name_reads_nothing(
    env: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    """A source id of '..' or with a '/' would point the layout outside its folder."""
    root = tmp_path / "store"
    write(root / "a.json", json.dumps({"id": "..", "title": "Dots", "messages": []}))
    write(root / "b.json", json.dumps({"id": "../files", "title": "Slash", "messages": []}))
    write(root / "files" / "secret.txt", b"everyone's")
    write(root / "files" / "a" / "mine.txt", b"a's")
    assert chatkeep("import", "files", str(root), "--layout", "files/{conversation}/**") == 0
    assert attached(db) == {"Dots": ["mine.txt"]}


def test_a_layout_reads_nothing_through_links(
    env: str, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.pdf", b"outside the import directory")
    root = make_forms_store(tmp_path / "store")
    for path in (root / "sessions").glob("*.json"):
        path.rename(root / path.name)
    (root / "filled" / "form-10.pdf").symlink_to(outside / "secret.pdf")
    (root / "session_files" / "form-10" / "link.png").symlink_to(outside / "secret.pdf")
    layouts = [
        "--layout",
        "session_files/{conversation}/*",
        "--layout",
        "filled/{conversation}.pdf",
    ]
    assert chatkeep("import", "files", str(root), *layouts) == 0
    err = capsys.readouterr().err
    for link in (root / "filled" / "form-10.pdf", root / "session_files" / "form-10" / "link.png"):
        assert f"{link}: a symbolic link; not read (skipped)" in err
    assert attached(db)["Tenth"] == ["visa.png"]


@pytest.mark.parametrize(
    "pattern",
    [
        "session_files/*",  # no {conversation}
        "{conversation}/{conversation}",
        "../{conversation}",
        "/abs/{conversation}",
        "a//{conversation}",
        "./{conversation}",
        "a**/{conversation}",
        "[ab]/{conversation}",
        "{id}/{conversation}",
    ],
)
def test_bad_layouts_are_refused_before_anything_is_read(
    env: str, db: psycopg.Connection, tmp_path: Path, pattern: str
) -> None:
    with pytest.raises(LayoutError):
        Layout(pattern)
    root = make_forms_store(tmp_path / "store")
    with pytest.raises(SystemExit) as refused:
        chatkeep("import", "files", str(root / "sessions"), "--layout", pattern)
    assert refused.value.code == 2
    assert db.execute("SELECT count(*) FROM conversations").fetchone() == (0,)


def test_a_shared_folder_is_listed_once_per_run(tmp_path: Path) -> None:
    """A wildcard beside {conversation} lists the folder above it once, not per conversation."""
    root = make_forms_store(tmp_path / "store")
    tree = SourceTree(root, Report())
    layout = Layout("filled/{conversation}-*.pdf")
    first = attachment_files(tree, [layout], ["form-1"])
    (root / "filled" / "form-10-late.pdf").write_bytes(b"after the listing")
    assert [p.name for p in first] == ["form-1-page2.pdf"]
    tenth = attachment_files(tree, [layout], ["form-10"])
    assert [p.name for p in tenth] == ["form-10-page1.pdf"]
