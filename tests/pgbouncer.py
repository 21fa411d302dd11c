"""A real PgBouncer (Debian's, 1.18) in transaction mode in front of the tests' PostgreSQL, for
tests/integration/test_pgbouncer.py and the API tests' second pass through it (README
"Behind PgBouncer"). Started once per test session, in a temporary directory of its own."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from service.db.embedded import _free_port

# Debian installs it in /usr/sbin, which a developer's PATH may lack.
SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"
START_SECONDS = 10
# More than every test's pools together; the server side is capped per database and user.
MAX_CLIENTS = 500
SERVER_POOL_SIZE = 20


def executable() -> str | None:
    return shutil.which("pgbouncer", path=SEARCH_PATH)


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PgBouncer refuses to run as root: then it runs as PostgreSQL's user (as the throwaway
    server does, service/db/embedded.py); None means the current user."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(os.environ.get("CHATKEEP_PG_USER", "postgres"))


def _quoted(value: str) -> str:
    # userlist.txt quotes with double quotes, doubled inside.
    return '"' + value.replace('"', '""') + '"'


@dataclass
class PgBouncer:
    """PgBouncer on 127.0.0.1, pool_mode=transaction, in front of one PostgreSQL server; every
    database of that server is reachable under its own name, with the same user and password
    (SCRAM on both sides)."""

    server_host: str
    server_port: int
    user: str
    password: str

    def start(self) -> None:
        binary = executable()
        assert binary, "pgbouncer is not installed"
        self.directory = Path(tempfile.mkdtemp(prefix="chatkeep-pgbouncer-"))
        self.port = _free_port()
        self.logfile = self.directory / "pgbouncer.log"
        users = self.directory / "userlist.txt"
        users.write_text(f"{_quoted(self.user)} {_quoted(self.password)}\n")
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {users}\n"
            "pool_mode = transaction\n"
            f"max_client_conn = {MAX_CLIENTS}\ndefault_pool_size = {SERVER_POOL_SIZE}\n"
            # The admin console (SHOW CLIENTS).
            f"admin_users = {self.user}\n"
            # pytest-postgresql drops and recreates each test's database: a login that fails
            # meanwhile must not hold the pool back for the default 15 s.
            "server_login_retry = 1\n"
            # Every test connects afresh: logging each connection would only bury the errors.
            "log_connections = 0\nlog_disconnections = 0\n"
            f"logfile = {self.logfile}\npidfile = {self.directory / 'pgbouncer.pid'}\n"
        )
        account = _unprivileged_user()
        if account:
            for path in (self.directory, users, ini):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.process = subprocess.Popen(
            [binary, str(ini)],
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            # It logs to the logfile as well: an unread pipe would fill up and stop it.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self._log()}")
            try:
                self.admin("SHOW VERSION")
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not start in {START_SECONDS}s: {self._log()}")

    def _log(self) -> str:
        try:
            return self.logfile.read_text()[-4000:]
        except OSError as exc:
            return f"no log ({exc})"

    def url(self, direct_url: str) -> str:
        """``direct_url`` (a database of the server behind) as reached through PgBouncer."""
        parts = urlsplit(direct_url)
        login = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{login}@127.0.0.1:{self.port}"))

    def route(self, direct_url: str) -> dict[str, str]:
        """The settings of an app on ``direct_url``'s database through PgBouncer, with the
        direct URL for what needs a session of its own."""
        return {
            "database_url": self.url(direct_url),
            "pool_mode": "transaction",
            "direct_database_url": direct_url,
        }

    def admin(self, command: str) -> list[tuple[object, ...]]:
        """A command of PgBouncer's admin console (simple query protocol only)."""
        with psycopg.connect(
            self.url("postgresql:///pgbouncer"), autocommit=True, connect_timeout=2
        ) as conn:
            cursor = psycopg.ClientCursor(conn)
            cursor.execute(command)
            return cursor.fetchall() if cursor.description else []

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
