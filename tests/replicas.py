"""A real streaming replica of a test PostgreSQL server, for tests that read from replicas.

``StreamingReplica.start(primary)`` takes a base backup of ``primary`` (an
EmbeddedPostgres, e.g. the test session's throwaway server) with ``pg_basebackup -R`` (which
writes standby.signal and primary_conninfo), and starts it on a port of its own as the same
unprivileged user as the primary (PostgreSQL refuses to run as root). The replica is a hot
standby: it answers read-only queries while it replays the primary's WAL, streamed as it is
written. Every database of the primary is there, including ones created after the backup.

The initdb of EmbeddedPostgres already allows what replication needs: wal_level=replica and
max_wal_senders are PostgreSQL's defaults, pg_hba.conf has `replication` rules for local and
127.0.0.1 connections, and its superuser may replicate.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from service.db.embedded import NON_DURABLE, EmbeddedPostgres

CATCH_UP_SECONDS = 30


@dataclass
class StreamingReplica:
    server: EmbeddedPostgres
    primary: EmbeddedPostgres

    @classmethod
    def start(cls, primary: EmbeddedPostgres) -> StreamingReplica:
        # A directory of its own, as the primary's: the server's user must be able to enter it.
        directory = Path(tempfile.mkdtemp(prefix="chatkeep-replica-"))
        # The primary's superuser and password are the replica's too: the backup copies roles.
        shutil.copy(primary.password_file, directory / "password")
        server = EmbeddedPostgres(directory, server_options=NON_DURABLE, tcp=True)
        user = server._server_user()
        for path in (directory, directory / "password"):
            if user:
                os.chown(path, user.pw_uid, user.pw_gid)
        # As the server's user, so that it owns the files it starts on.
        primary._run(
            "pg_basebackup",
            "--pgdata",
            str(server.pgdata),
            "--dbname",
            primary.url("postgres"),
            "--write-recovery-conf",
            "--wal-method",
            "stream",
            "--checkpoint",
            "fast",
            "--no-sync",
        )
        server.start()
        return cls(server, primary)

    def url(self, database: str) -> str:
        """``database`` on the replica."""
        return self.server.url(database)

    def same_database_on_replica(self, primary_url: str) -> str:
        """The replica's URL of the database ``primary_url`` names (same user and password)."""
        replica = urlsplit(self.server.url())
        primary = urlsplit(primary_url)
        netloc = primary.netloc.rsplit("@", 1)[0] + "@" + replica.netloc.rsplit("@", 1)[1]
        return urlunsplit(primary._replace(netloc=netloc))

    def _execute(self, statement: str, *params: object) -> object:
        with psycopg.connect(self.server.url("postgres"), autocommit=True) as conn:
            row = conn.execute(statement, params or None).fetchone()
            return row[0] if row else None

    def pause(self) -> None:
        """Stop replaying WAL (it is still received): the replica falls behind."""
        self._execute("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self._execute("SELECT pg_wal_replay_resume()")

    def replay_position(self) -> str:
        return str(self._execute("SELECT pg_last_wal_replay_lsn()"))

    def catch_up(self) -> None:
        """Wait until the replica has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary.url("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while time.monotonic() < deadline:
            behind = self._execute("SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", target)
            if behind is False:
                return
            time.sleep(0.01)
        raise AssertionError(f"the replica did not replay up to {target}")

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.server.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def streaming_replica() -> Iterator[StreamingReplica]:
    """A streaming replica of the tests' throwaway server for a test module (import this
    fixture into it): every database created there, later too, reaches it through the log."""
    # The server tests/integration/conftest.py's hooks started (client/tests share them).
    from tests.integration import conftest

    primary = conftest._throwaway
    if primary is None:
        pytest.skip("needs the throwaway test server to take a base backup of (DATABASE_URL set)")
    started = StreamingReplica.start(primary)
    yield started
    started.stop()
