"""The client's tests run against the in-memory fake and against a real ``chatkeep serve``.

The real server runs once per test session on a database of its own, cloned from the migrated
template of tests/integration/conftest.py (whose hooks choose the PostgreSQL server: the one
DATABASE_URL or PGHOST names, else a throwaway one). Tests share it, so each uses ids, user ids
and prompt names of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from backends import BACKENDS, Backend, LiveServer, fake_backend, server_backend
from chatkeep_client import Chatkeep
from service.core.principal import ALL_PERMISSIONS
from tests.helpers import JWT_SECRET, create_key
from tests.integration.conftest import (
    postgresql_server,
    pytest_configure,
    pytest_unconfigure,
)
from tests.live import live_service

__all__ = ["postgresql_server", "pytest_configure", "pytest_unconfigure"]

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
def live_server(postgresql_server: NoopExecutor) -> Iterator[LiveServer]:
    """One real server for the session, on a database cloned from the migrated template."""
    janitor = DatabaseJanitor(
        user=postgresql_server.user,
        host=postgresql_server.host,
        port=postgresql_server.port,
        dbname=f"chatkeep_client_{uuid.uuid4().hex[:8]}",
        template_dbname=postgresql_server.template_dbname,
        maintenance_dbname=postgresql_server.maintenance_dbname,
        password=postgresql_server.password,
    )
    with janitor:
        password = (
            f":{quote(postgresql_server.password, safe='')}" if postgresql_server.password else ""
        )
        database_url = (
            f"postgresql://{postgresql_server.user}{password}@{postgresql_server.host}:"
            f"{postgresql_server.port}/{janitor.dbname}"
        )
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
