"""`chatkeep check` beyond the primary: its replicas (standby, lag) and the pooler
in front of it, each a reason to exit 1."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import psycopg
import pytest

from service.cli import main
from service.db.embedded import _free_port
from tests.replicas import StreamingReplica, streaming_replica

__all__ = ["streaming_replica"]


@pytest.fixture
def checking(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a migrated database that `chatkeep check` is pointed at."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    return urlsplit(database_url).path.lstrip("/")


def test_a_caught_up_replica_is_healthy_and_a_primary_is_no_replica(
    checking: str,
    database_url: str,
    streaming_replica: StreamingReplica,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    streaming_replica.catch_up()
    monkeypatch.setenv("CHATKEEP_REPLICA_URLS", streaming_replica.url(checking))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "replica 1: " in out
    assert "standby" in out
    assert "status:    healthy" in out

    monkeypatch.setenv("CHATKEEP_REPLICA_URLS", f"{streaming_replica.url(checking)},{database_url}")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "replica 2: " in out
    assert "NOT a standby" in out
    assert "replica 2 cannot serve reads" in out


def test_a_replica_too_far_behind_fails_the_check(
    checking: str,
    database_url: str,
    streaming_replica: StreamingReplica,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CHATKEEP_REPLICA_URLS", streaming_replica.url(checking))
    monkeypatch.setenv("CHATKEEP_REPLICA_MAX_LAG_SECONDS", "0.5")
    streaming_replica.catch_up()  # the test's database exists there
    streaming_replica.pause()
    try:
        time.sleep(1)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO conversations (id) VALUES (gen_random_uuid())")
        time.sleep(1)
        assert main(["check"]) == 1
        assert "TOO FAR behind" in capsys.readouterr().out
    finally:
        streaming_replica.resume()


def test_transaction_mode_checks_the_pooler_too(
    checking: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The migrations, readiness and latency checks go to the direct connection; the pooler that
    # DATABASE_URL names is tried on its own.
    monkeypatch.setenv("CHATKEEP_POOL_MODE", "transaction")
    monkeypatch.setenv("CHATKEEP_DIRECT_DATABASE_URL", database_url)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://x@127.0.0.1:{_free_port()}/db")
    monkeypatch.setenv("CHATKEEP_CONNECT_TIMEOUT", "2")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "pooler:    FAILED" in out
    assert "pending:   none" in out
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "pool mode: transaction" in out
    assert "pooler:    ok" in out
