"""The embedded server lets in only whoever holds its password: no trust, no TCP unless asked."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from service.db.dburl import redacted
from service.db.embedded import (
    NON_DURABLE,
    SUPERUSER,
    EmbeddedError,
    EmbeddedPostgres,
    utf8_ctype,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory the server's user can reach (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="chatkeep-embedded-"))
    directory.chmod(0o755)
    yield directory / "data"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(data_dir, server_options=NON_DURABLE)
    yield embedded
    embedded.stop()


def _server_uid(server: EmbeddedPostgres) -> int:
    """The server's user: ``postgres`` when the tests run as root, else whoever runs them."""
    user = server._server_user()
    return user.pw_uid if user else os.getuid()


def _methods(server: EmbeddedPostgres) -> set[str]:
    """The authentication methods of pg_hba.conf's rules (the last word of each)."""
    rules = (server.pgdata / "pg_hba.conf").read_text().splitlines()
    return {rule.split()[-1] for rule in rules if rule.strip() and not rule.startswith("#")}


def _login(server: EmbeddedPostgres, host: str, port: int, password: str = "") -> None:
    """Connect as the superuser with ``password`` rather than the URL's."""
    psycopg.connect(
        host=host,
        port=port,
        user=SUPERUSER,
        password=password,
        dbname=server.database,
        connect_timeout=5,
    ).close()


@pytest.fixture(autouse=True)
def _no_ambient_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # libpq would otherwise fill in a password from the environment or ~/.pgpass.
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))


def test_a_fresh_server_wants_its_password_and_has_no_tcp_listener(
    server: EmbeddedPostgres,
) -> None:
    url = server.start()
    password = server.password_file.read_text().strip()
    assert f":{password}@" in url
    assert password not in redacted(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        port = conn.info.port

    socket_dir = str(server.socket_dir)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _login(server, host=socket_dir, port=port)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _login(server, host=socket_dir, port=port, password="guess")
    with pytest.raises(psycopg.OperationalError, match="refused"):
        _login(server, host="127.0.0.1", port=port, password=password)


def test_tcp_when_asked_for_also_wants_the_password(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir, server_options=NON_DURABLE, tcp=True)
    try:
        url = server.start()
        assert url.startswith(f"postgresql://{SUPERUSER}:")
        with psycopg.connect(url) as conn:
            assert conn.info.host == "127.0.0.1"
            port = conn.info.port
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            _login(server, host="127.0.0.1", port=port)
    finally:
        server.stop()


def test_letters_outside_ascii_make_trigrams(server: EmbeddedPostgres) -> None:
    # The trigram index serves Japanese and Chinese substrings only under a UTF-8 LC_CTYPE.
    with psycopg.connect(server.start(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_trgm")
        ctype, trigrams = conn.execute(
            "SELECT datctype, show_trgm('請求書の件') FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone() or (None, None)
    assert (ctype, bool(trigrams)) == (utf8_ctype(), utf8_ctype() != "C")


def test_the_password_and_the_socket_are_private(server: EmbeddedPostgres) -> None:
    server.start()
    owner = _server_uid(server)
    password = server.password_file.stat()
    assert stat.S_IMODE(password.st_mode) == 0o600
    assert password.st_uid == owner
    sockets = server.socket_dir.stat()
    assert stat.S_IMODE(sockets.st_mode) & 0o077 == 0
    assert sockets.st_uid == owner
    assert not list(server.data_dir.glob(".s.PGSQL.*")), "a socket outside the private directory"


def test_a_restart_keeps_the_password_and_the_data(server: EmbeddedPostgres) -> None:
    url = server.start()
    password = server.password_file.read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 'still here' AS note")
    server.stop()

    assert server.start() == url
    assert server.password_file.read_text() == password
    assert server.running_url() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT note FROM kept").fetchone() == ("still here",)


def test_a_removed_password_file_gets_a_new_password(server: EmbeddedPostgres) -> None:
    old_url = server.start()
    with psycopg.connect(old_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 'still here' AS note")
    server.stop()
    server.password_file.unlink()

    url = server.start()
    assert url != old_url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT note FROM kept").fetchone() == ("still here",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(old_url)


def _initialise_the_old_way(server: EmbeddedPostgres) -> None:
    """A data directory as chatkeep made it before passwords, holding a table."""
    server.data_dir.mkdir()
    os.chown(server.data_dir, _server_uid(server), -1)
    server._run(
        "initdb",
        "--pgdata",
        str(server.pgdata),
        "--username",
        SUPERUSER,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        "--locale",
        "C",
        "--no-sync",
    )
    server._run(
        "postgres",
        "--single",
        "-D",
        str(server.pgdata),
        "postgres",
        stdin="CREATE TABLE kept AS SELECT 'from before' AS note;\n",
    )


def test_a_directory_of_an_older_version_is_upgraded_to_passwords(
    server: EmbeddedPostgres,
) -> None:
    _initialise_the_old_way(server)
    assert _methods(server) == {"trust"}

    server.start()
    assert _methods(server) == {"scram-sha-256"}
    with psycopg.connect(server.url("postgres")) as conn:
        assert conn.execute("SELECT note FROM kept").fetchone() == ("from before",)
        port = conn.info.port
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _login(server, host=str(server.socket_dir), port=port)
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600


def test_a_running_server_of_an_older_version_is_refused_with_what_to_do(
    server: EmbeddedPostgres,
) -> None:
    _initialise_the_old_way(server)
    server.port_file.write_text("5999\n")
    server._run(
        "pg_ctl",
        "start",
        "--pgdata",
        str(server.pgdata),
        "--log",
        str(server.logfile),
        "--wait",
        "-o",
        f"-c listen_addresses='' -c port=5999 -c unix_socket_directories={server.data_dir}",
    )
    with pytest.raises(EmbeddedError, match="an older chatkeep started it"):
        server.running_url()
    with pytest.raises(EmbeddedError, match="an older chatkeep started it"):
        server.start()

    server.stop()
    assert server.start()
    assert _methods(server) == {"scram-sha-256"}
