"""An embedded PostgreSQL: a private server in a local data directory that chatkeep starts itself.

Used by ``chatkeep serve`` when DATABASE_URL is unset, and by the test suite when the environment
names no server. PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
user (``postgres`` unless CHATKEEP_PG_USER says otherwise).

Only its owner reaches it: the superuser logs in with a password (SCRAM) generated into the data
directory, over a socket in a private directory; TCP (127.0.0.1) only when asked for.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

SUPERUSER = "chatkeep"
DEFAULT_DATABASE = "chatkeep"
START_TIMEOUT_SECONDS = 60
# PostgreSQL's limit on a Unix socket's path (sun_path without its terminating NUL).
MAX_SOCKET_PATH_BYTES = 107
# A rule (not a comment) of pg_hba.conf letting everyone in, as `initdb --auth trust` wrote them
# for data directories of chatkeep before passwords.
TRUST_RULE = re.compile(r"^(?![ \t]*#)(.*[ \t])trust(?=\s|$)", re.MULTILINE)
# Options for throwaway test servers: durability is pointless there and costs seconds.
NON_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedError(RuntimeError):
    """The embedded server could not be set up; the message says what to do."""


def utf8_ctype() -> str:
    """C.UTF-8 where the system has it (glibc 2.35 and later: Debian, Ubuntu, Fedora), else C."""
    try:
        # Locale names may be in any encoding (bokmål in Latin-1): only ASCII ones matter here.
        listed = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, errors="replace", check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "C"
    names = {name.lower().replace("-", "") for name in listed.stdout.split()}
    return "C.UTF-8" if "c.utf8" in names else "C"


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
    # Also listen on 127.0.0.1 (for clients that need a host and port); the socket is always there.
    tcp: bool = False

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.logfile = self.data_dir / "postgres.log"
        self.port_file = self.data_dir / "port"
        self.password_file = self.data_dir / "password"
        self.socket_dir = self.data_dir / "socket"
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

    def _run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        user = self._user
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            input=stdin,
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

    def _give(self, path: Path) -> None:
        """Hand ``path`` to the server's user (when we are root; otherwise it is ours already)."""
        if self._user:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _prepare_directory(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            self._check_reachable(self._user)
        self._give(self.data_dir)
        # Whoever can enter this directory can try the socket: only the server's user (and root).
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.chmod(0o700)
        self._give(self.socket_dir)

    def _create_password(self) -> bool:
        """Generate the superuser's password unless there is one; True when it is new."""
        try:
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            self.password_file.chmod(0o600)
            return False
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        # initdb, running as the server's user, reads it.
        self._give(self.password_file)
        return True

    def _password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise EmbeddedError(
                f"cannot read the embedded server's password ({exc.strerror}: "
                f"{self.password_file}): run chatkeep as the user that started the server"
            ) from None

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
            "scram-sha-256",
            "--pwfile",
            str(self.password_file),
            "--encoding",
            "UTF8",
            # C sorts by bytes, fast and the same everywhere; a UTF-8 character classification
            # lets pg_trgm index letters outside ASCII (README "Search").
            "--locale",
            "C",
            "--lc-ctype",
            utf8_ctype(),
            *(["--no-sync"] if self.server_options else []),
        )

    def _trusts_everyone(self) -> bool:
        """Whether an older chatkeep initialised the directory (initdb --auth trust)."""
        return bool(TRUST_RULE.search((self.pgdata / "pg_hba.conf").read_text()))

    def _running_without_password(self) -> EmbeddedError:
        return EmbeddedError(
            f"the embedded server in {self.data_dir} runs without the password of "
            f"{self.password_file} (an older chatkeep started it, letting every local user in, "
            f"or the file was removed): stop it (stop that `chatkeep serve`, or run `pg_ctl stop "
            f"--pgdata {self.pgdata}` as the server's user), then run `chatkeep serve` again, "
            f"which sets the password and keeps the data"
        )

    def _set_password(self) -> None:
        """Give the superuser the file's password; where pg_hba.conf said trust (directories of
        older versions), ask for it."""
        if self.is_running():
            raise self._running_without_password()
        # Single-user mode: no server, so nobody can connect while the rules still say trust.
        self._run(
            "postgres",
            "--single",
            "-D",
            str(self.pgdata),
            "-c",
            "exit_on_error=on",
            # An error must not print the statement: it holds the password.
            "-c",
            "log_min_error_statement=panic",
            "postgres",
            stdin=(
                "SET password_encryption = 'scram-sha-256';\n"
                f"ALTER ROLE {SUPERUSER} PASSWORD '{self._password()}';\n"
            ),
        )
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(TRUST_RULE.sub(r"\1scram-sha-256", hba.read_text()))

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

    def url(self, database: str | None = None) -> str:
        """The server's URL, password included; over the socket unless TCP was asked for."""
        login = f"{SUPERUSER}:{quote(self._password(), safe='')}"
        name = database or self.database
        port = self._saved_port()
        if self.tcp:
            return f"postgresql://{login}@127.0.0.1:{port}/{name}"
        return f"postgresql://{login}@/{name}?host={quote(str(self.socket_dir))}&port={port}"

    def running_url(self) -> str | None:
        """The URL of this data directory's server if it is up (e.g. for `chatkeep check`)."""
        if not (self.is_running() and self._saved_port()):
            return None
        if self._trusts_everyone():
            raise self._running_without_password()
        return self.url()

    def _choose_port(self) -> int:
        saved = self._saved_port()
        # Without TCP the port only names the socket file, which no one else can take.
        if saved and (not self.tcp or _port_is_free(saved)):
            return saved
        return _free_port()

    def start(self) -> str:
        """Start the server (initialising the directory on first use); returns its URL."""
        self._prepare_directory()
        # Before initdb, which reads it.
        new_password = self._create_password()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initialise()
        elif new_password or self._trusts_everyone():
            self._set_password()
        if not self.is_running():
            port = self._choose_port()
            socket_path = self.socket_dir / f".s.PGSQL.{port}"
            if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH_BYTES:
                raise EmbeddedError(
                    f"the socket path {socket_path} is longer than PostgreSQL "
                    f"allows ({MAX_SOCKET_PATH_BYTES} bytes): choose a shorter CHATKEEP_DATA_DIR"
                )
            options = {
                "port": str(port),
                "listen_addresses": "127.0.0.1" if self.tcp else "''",
                "unix_socket_directories": str(self.socket_dir),
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
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "--pgdata", str(self.pgdata), "--mode", "fast", "--wait")
