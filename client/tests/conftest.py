"""The client's tests run against the in-memory fake and against a real ``chatkeep serve``.

The real server runs once per test session on a database of its own, on the PostgreSQL server
tests/integration/conftest.py's hooks choose (the one DATABASE_URL or PGHOST names, else a
throwaway one). Tests share it, so each uses ids, user ids and prompt names of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from backends import BACKENDS, Backend, LiveServer, fake_backend, server_backend
from chatkeep_client import Chatkeep
from service.core.principal import ALL_PERMISSIONS
from tests.helpers import JWT_SECRET, create_key

# The hooks choose the PostgreSQL server (pytest-postgresql's options); they run once however
# many conftests carry them.
from tests.integration.conftest import migrate_template, pytest_configure, pytest_unconfigure
from tests.live import live_service

__all__ = ["pytest_configure", "pytest_unconfigure"]

# A migrated template of the client tests' own: tests/integration's fixtures are not visible
# here, and a second instance of its session fixture would create its template twice.
client_postgresql_server = factories.postgresql_noproc(
    dbname="chatkeep_client_tests", load=[migrate_template]
)

# The real server's settings: every way in (keys, user tokens, visitors, accounts), and no rate
# limit that a whole test session of one user could run into.
SERVER_SETTINGS = {
    "jwt_secret": JWT_SECRET,
    "allow_anonymous": "true",
    "accounts": "true",
    "requests_per_minute": "0",
    "failed_auth_per_minute": "0",
}


@pytest.fixture(scope="session")
def live_server(client_postgresql_server: NoopExecutor) -> Iterator[LiveServer]:
    """One real server for the session, on a database cloned from the migrated template."""
    pg = client_postgresql_server
    janitor = DatabaseJanitor(
        user=pg.user,
        host=pg.host,
        port=pg.port,
        dbname=f"chatkeep_client_{uuid.uuid4().hex[:8]}",
        template_dbname=pg.template_dbname,
        maintenance_dbname=pg.maintenance_dbname,
        password=pg.password,
    )
    password = f":{quote(pg.password, safe='')}" if pg.password else ""
    database_url = f"postgresql://{pg.user}{password}@{pg.host}:{pg.port}/{janitor.dbname}"
    with janitor:
        api_key = asyncio.run(create_key(database_url, ALL_PERMISSIONS))
        with live_service(database_url, **SERVER_SETTINGS) as (base_url, _):
            yield LiveServer(base_url, api_key, database_url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The fake, then the real server: a contract test passes on both or it fails."""
    if request.param == "fake":
        yield fake_backend()
    else:
        yield from server_backend(request)


@pytest.fixture
def ck(backend: Backend) -> Chatkeep:
    """A client with an API key of every permission."""
    return backend.client
