"""Every test talks to a real PostgreSQL server.

Which server: the one DATABASE_URL (or PGHOST/PGPORT/PGUSER/PGPASSWORD) names, else a throwaway
one started here in a temporary directory (as the ``postgres`` user when run as root) and
stopped at the end. pytest-postgresql migrates a template database once per session and clones
it for every test, so each test starts from a clean, migrated schema in milliseconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_postgresql import factories

from service.app import create_app
from service.core.principal import ALL_PERMISSIONS
from service.core.settings import Settings, settings_from_env
from service.db import migrations
from service.db.embedded import NON_DURABLE, EmbeddedPostgres
from tests.helpers import JWT_SECRET, create_key
from tests.live import live_service
from tests.pgbouncer import PgBouncer
from tests.pgbouncer import executable as pgbouncer_executable

Client = AsyncTestClient[Litestar]
_throwaway: EmbeddedPostgres | None = None


def _named_server() -> dict[str, Any] | None:
    """Host, port, user and password of the server the environment names, if it names one."""
    if url := os.environ.get("DATABASE_URL"):
        parts = urlsplit(url)
        return {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 5432,
            "user": parts.username or "postgres",
            "password": parts.password or "",
        }
    if host := os.environ.get("PGHOST"):
        return {
            "host": host,
            "port": int(os.environ.get("PGPORT", "5432")),
            "user": os.environ.get("PGUSER", "postgres"),
            "password": os.environ.get("PGPASSWORD", ""),
        }
    return None


def pytest_configure(config: pytest.Config) -> None:
    global _throwaway  # noqa: PLW0603 - one server per test session
    if _throwaway is not None:
        # Configured already: client/tests/conftest.py shares these hooks.
        return
    server = _named_server()
    if server is None:
        # TCP: pytest-postgresql and url_of below want a host and a port.
        _throwaway = EmbeddedPostgres(
            Path(tempfile.mkdtemp(prefix="chatkeep-tests-")), server_options=NON_DURABLE, tcp=True
        )
        url = urlsplit(_throwaway.start())
        server = {
            "host": url.hostname,
            "port": url.port,
            "user": url.username,
            "password": url.password,
        }
    config.option.postgresql_host = server["host"]
    config.option.postgresql_port = server["port"]
    config.option.postgresql_user = server["user"]
    config.option.postgresql_password = server["password"]


def pytest_unconfigure(config: pytest.Config) -> None:
    global _throwaway  # noqa: PLW0603 - one server per test session
    if _throwaway is not None:
        _throwaway.stop()
        shutil.rmtree(_throwaway.data_dir, ignore_errors=True)
        _throwaway = None


def url_of(info: psycopg.ConnectionInfo, dbname: str | None = None) -> str:
    password = f":{quote(info.password, safe='')}" if info.password else ""
    return (
        f"postgresql://{quote(info.user, safe='')}{password}@{info.host}:{info.port}/"
        f"{dbname or info.dbname}"
    )


def migrate_template(host: str, port: int, user: str, dbname: str, password: str, **_: Any) -> None:
    password_part = f":{quote(password, safe='')}" if password else ""
    migrations.apply(f"postgresql://{user}{password_part}@{host}:{port}/{dbname}")


postgresql_server = factories.postgresql_noproc(dbname="chatkeep_tests", load=[migrate_template])
postgresql = factories.postgresql("postgresql_server")
# An empty database (no schema) for migration and readiness tests.
empty_server = factories.postgresql_noproc(dbname="chatkeep_empty")
empty_postgresql = factories.postgresql("empty_server")


@pytest.fixture
def database_url(postgresql: psycopg.Connection) -> str:
    """A freshly migrated database of this test's own."""
    return url_of(postgresql.info)


@pytest.fixture
def empty_database_url(empty_postgresql: psycopg.Connection) -> str:
    """A database of this test's own with no schema at all."""
    return url_of(empty_postgresql.info)


def make_settings(database_url: str, **overrides: str) -> Settings:
    env = {"DATABASE_URL": database_url, "CHATKEEP_POOL_MIN_SIZE": "1"}
    env.update({f"CHATKEEP_{name.upper()}": value for name, value in overrides.items()})
    return settings_from_env(env)


@pytest.fixture(scope="session")
def pgbouncer(request: pytest.FixtureRequest) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the tests' server (tests/pgbouncer.py)."""
    if not pgbouncer_executable():
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer): not run through it")
    option = request.config.option
    bouncer = PgBouncer(
        option.postgresql_host,
        option.postgresql_port,
        option.postgresql_user,
        option.postgresql_password,
    )
    bouncer.start()
    yield bouncer
    bouncer.stop()


# The API's second pass (README "Tests"): these modules' tests of the in-process app run once
# with the app on the database directly and once behind PgBouncer in transaction mode.
THROUGH_PGBOUNCER = {
    f"tests.integration.test_{name}"
    for name in (
        "conversations_api",
        "messages_api",
        "files",
        "conversation_state",
        "external_ids",
        "conversation_lists",
        "search",
        "identity",
    )
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in THROUGH_PGBOUNCER and "database_route" in metafunc.fixturenames:
        metafunc.parametrize("database_route", ["direct", "pgbouncer"], indirect=True)


@pytest.fixture
def database_route(request: pytest.FixtureRequest, database_url: str) -> dict[str, str]:
    """The settings that say how the app reaches the test's database: directly, or through
    PgBouncer (pool_mode=transaction, with the direct URL for its sessions)."""
    if getattr(request, "param", "direct") == "direct":
        return {"database_url": database_url}
    bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
    return bouncer.route(database_url)


@pytest.fixture
def settings(database_route: dict[str, str]) -> Settings:
    return make_settings(
        **database_route, pool_max_size="20", jwt_secret=JWT_SECRET, allow_anonymous="true"
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def api_key(database_url: str) -> str:
    """A key with every permission, created as `chatkeep keys create` does."""
    return await create_key(database_url, ALL_PERMISSIONS)


@pytest.fixture
async def anonymous_client(app: Litestar) -> AsyncIterator[Client]:
    """A client that sends no credentials unless a request adds them."""
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def client(anonymous_client: Client, api_key: str) -> Client:
    """A trusted back end: every request carries an API key with every permission."""
    anonymous_client.headers["Authorization"] = f"Bearer {api_key}"
    return anonymous_client


@pytest.fixture
def db(postgresql: psycopg.Connection) -> psycopg.Connection:
    """A direct connection to the test database, to check what the API stored."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
async def live_client(database_url: str, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A trusted back end talking to a real server process: requests really run concurrently."""
    with live_service(database_url) as (base, _):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
        ) as client:
            yield client
