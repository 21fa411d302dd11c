"""The chatkeep command: migrate, rollback, check (in process), serve (as a real process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.cli import main
from service.db import migrations
from service.db.embedded import EmbeddedError, EmbeddedPostgres, _free_port
from tests import live


def test_check_reports_and_exits_by_health(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    every_migration = migrations.expected_migrations()
    assert every_migration[:3] == ["0001.conversations", "0002.messages", "0003.identity"]
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "server:    PostgreSQL" in out
    assert "latency:" in out
    assert f"pending:   {', '.join(every_migration)}" in out

    assert main(["migrate"]) == 0
    assert f"applied: {', '.join(every_migration)}" in capsys.readouterr().out
    assert main(["check"]) == 0
    assert "status:    healthy" in capsys.readouterr().out

    assert main(["rollback", "--all"]) == 0
    rolled_back = ", ".join(reversed(every_migration))
    assert f"rolled back: {rolled_back}" in capsys.readouterr().out
    assert main(["check"]) == 1


def test_check_fails_when_the_database_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://x@127.0.0.1:{_free_port()}/db")
    monkeypatch.setenv("CHATKEEP_CONNECT_TIMEOUT", "2")
    assert main(["check"]) == 1
    assert "connect:   FAILED" in capsys.readouterr().out


def test_commands_need_a_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CHATKEEP_DATA_DIR", str(tmp_path / "none"))
    assert main(["migrate"]) == 2
    assert main(["check"]) == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_unreachable_data_dir_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(EmbeddedError, match="cannot enter"):
        EmbeddedPostgres(tmp_path / "data").start()


def _embedded_env(data_dir: Path) -> dict[str, str]:
    """The environment of a newcomer: no database named, so the embedded server is used."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "DATABASE_URL" and not name.startswith("PG")
    }
    env["CHATKEEP_DATA_DIR"] = str(data_dir)
    return env


def _keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [live.CHATKEEP, "keys", *args],
        env=_embedded_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    return live.serve(_embedded_env(data_dir), port)


@pytest.fixture
def server_reachable_dir() -> Iterator[Path]:
    """A directory the embedded server's user can reach (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="chatkeep-serve-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_serve_without_database_url_runs_on_embedded_postgres(server_reachable_dir: Path) -> None:
    data_dir = server_reachable_dir / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(data_dir, port)
    try:
        live.wait_ready(base, process)
        assert httpx.get(f"{base}/v1/conversations").status_code == 401
        created_key = _keys(data_dir, "create", "--name", "newcomer")
        assert created_key.returncode == 0, created_key.stderr
        auth = {"Authorization": f"Bearer {created_key.stdout.strip()}"}
        created = httpx.post(f"{base}/v1/conversations", json={"title": "kept"}, headers=auth)
        appended = httpx.post(
            f"{base}/v1/conversations/{created.json()['id']}/messages",
            json={"messages": [{"role": "user", "content": "still here?"}]},
            headers=auth,
        )
        assert appended.status_code == 201
    finally:
        output = live.stop(process)
    assert "embedded PostgreSQL at postgresql://chatkeep:***@/chatkeep?host=" in output
    assert (data_dir / "password").read_text().strip() not in output
    assert not EmbeddedPostgres(data_dir).is_running()

    # A restart reuses the data directory: what was stored is still there.
    process = _serve(data_dir, port)
    try:
        live.wait_ready(base, process)
        history = httpx.get(
            f"{base}/v1/conversations/{created.json()['id']}/messages", headers=auth
        ).json()
        assert [item["content"] for item in history["items"]] == ["still here?"]
        listed = _keys(data_dir, "list")
        key_id = created_key.stdout.split("_")[1]
        assert key_id in listed.stdout
        assert "newcomer" in listed.stdout
        revoked = _keys(data_dir, "revoke", key_id)
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        assert _keys(data_dir, "revoke", key_id).returncode == 1
        assert httpx.get(f"{base}/v1/conversations", headers=auth).status_code == 401
    finally:
        live.stop(process)
    assert not EmbeddedPostgres(data_dir).is_running()
