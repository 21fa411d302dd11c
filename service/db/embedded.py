"""An embedded PostgreSQL: a private server in a local data directory that chatkeep starts itself.

Used by ``chatkeep serve`` when DATABASE_URL is unset, and by the test suite when the environment
names no server. PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
user (``postgres`` unless CHATKEEP_PG_USER says otherwise).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "chatkeep"
DEFAULT_DATABASE = "chatkeep"
START_TIMEOUT_SECONDS = 60
# Options for throwaway test servers: durability is pointless there and costs seconds.
NON_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedError(RuntimeError):
    """The embedded server could not be set up; the message says what to do."""


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres."""
    candidates: list[Path] = []
    if configured := os.environ.get("CHATKEEP_PG_BINDIR"):
        candidates.append(Path(configured))
    if pg_config := shutil.which("pg_config"):
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(Path(result.stdout.strip()))
    # Debian/Ubuntu keep server binaries off PATH, one directory per major version.
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise EmbeddedError(
        "no PostgreSQL server binaries found (initdb, pg_ctl): install PostgreSQL "
        "(e.g. apt-get install postgresql), point CHATKEEP_PG_BINDIR at them, "
        "or set DATABASE_URL to use an existing server"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As PostgreSQL does: connections of a stopped server lingering in TIME_WAIT do not
        # make the port busy, a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    database: str = DEFAULT_DATABASE
    server_options: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.logfile = self.data_dir / "postgres.log"
        self.port_file = self.data_dir / "port"
        self.bindir = find_bindir()
        self._user = self._server_user()

    @staticmethod
    def _server_user() -> pwd.struct_passwd | None:
        """The account the server runs as; None means the current one (not root)."""
        if os.geteuid() != 0:
            return None
        name = os.environ.get("CHATKEEP_PG_USER", "postgres")
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise EmbeddedError(
                f"running as root, and PostgreSQL refuses to: create the unprivileged user "
                f"{name!r} (or name another with CHATKEEP_PG_USER)"
            ) from None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self._user
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
        )
        if check and result.returncode != 0:
            raise EmbeddedError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
                f"\nserver log: {self.logfile}"
            )
        return result

    def _prepare_directory(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            self._check_reachable(self._user)
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)

    def _check_reachable(self, user: pwd.struct_passwd) -> None:
        """The server user must be able to enter every directory above the data directory."""
        for directory in self.data_dir.parents:
            info = directory.stat()
            if info.st_uid == user.pw_uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid == user.pw_gid:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                raise EmbeddedError(
                    f"the PostgreSQL server runs as {user.pw_name!r}, which cannot enter "
                    f"{directory}: set CHATKEEP_DATA_DIR to a directory it can reach "
                    f"(e.g. under /var/lib or /tmp), or allow it (chmod o+x {directory})"
                )

    def _initialise(self) -> None:
        self._run(
            "initdb",
            "--pgdata",
            str(self.pgdata),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            *(["--no-sync"] if self.server_options else []),
        )

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return (
            self._run("pg_ctl", "status", "--pgdata", str(self.pgdata), check=False).returncode == 0
        )

    def _saved_port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self, port: int | None = None) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port or self._saved_port()}/{self.database}"

    def running_url(self) -> str | None:
        """The URL of this data directory's server if it is up (e.g. for `chatkeep check`)."""
        return self.url() if self.is_running() and self._saved_port() else None

    def start(self) -> str:
        """Start the server (initialising the directory on first use); returns its URL."""
        self._prepare_directory()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initialise()
        if not self.is_running():
            saved = self._saved_port()
            port = saved if saved and _port_is_free(saved) else _free_port()
            options = {
                "port": str(port),
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(self.data_dir),
                **(self.server_options or {}),
            }
            self._run(
                "pg_ctl",
                "start",
                "--pgdata",
                str(self.pgdata),
                "--log",
                str(self.logfile),
                "--wait",
                "--timeout",
                str(START_TIMEOUT_SECONDS),
                "-o",
                " ".join(f"-c {name}={value}" for name, value in options.items()),
            )
            self.port_file.write_text(f"{port}\n")
        self._create_database()
        return self.url()

    def _create_database(self) -> None:
        with psycopg.connect(self.url().rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "--pgdata", str(self.pgdata), "--mode", "fast", "--wait")
