"""Behind PgBouncer in transaction mode (README "Behind PgBouncer"), the real one (Debian's 1.18,
tests/pgbouncer.py): requests go through it, while what needs a session of its own (the
listener's LISTEN, the prune's lock, migrations, an export's cursors) connects directly. The
main API test modules run through it as well (THROUGH_PGBOUNCER, tests/integration/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest

from service.core import apikeys
from service.core.principal import ALL_PERMISSIONS
from service.core.settings import SettingsError, settings_from_env
from service.db.embedded import _free_port
from service.db.listener import APPLICATION_NAME as LISTENER
from service.history import keys
from tests.helpers import JWT_SECRET, bearer, create_key, messages_body, new_conversation
from tests.integration.conftest import Client
from tests.live import CHATKEEP, live_service
from tests.pgbouncer import PgBouncer
from tests.sse import open_stream

THROUGH_PGBOUNCER = pytest.mark.parametrize("database_route", ["pgbouncer"], indirect=True)
SETTLE_SECONDS = 10.0
# Only a notification, never the cache's expiry, can explain a refused key.
NEVER_EXPIRES = "3600"


async def eventually(condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def two_workers_through(
    bouncer: PgBouncer, database_url: str, api_key: str, **settings: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a real two-worker server whose pool goes through PgBouncer; each request
    may be served by either worker (no connection reuse)."""
    route = bouncer.route(database_url)
    with live_service(
        route.pop("database_url"), **route, jwt_secret=JWT_SECRET, workers="2", **settings
    ) as (base, _):
        async with httpx.AsyncClient(
            base_url=base,
            headers=bearer(api_key),
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            yield client


def pooler_clients(bouncer: PgBouncer) -> list[str]:
    """The application names of PgBouncer's clients."""
    rows = bouncer.admin("SHOW CLIENTS")
    return [str(row[-1]) for row in rows]


async def listeners_at(database_url: str, count: int) -> bool:
    """Whether ``count`` listener connections LISTEN on the server itself."""
    conn = await asyncpg.connect(database_url)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
            "AND datname = current_database() AND query LIKE 'LISTEN %'",
            LISTENER,
        )
    finally:
        await conn.close()
    return bool(found == count)


def test_transaction_mode_needs_the_direct_url() -> None:
    with pytest.raises(SettingsError, match="CHATKEEP_DIRECT_DATABASE_URL"):
        settings_from_env(
            {"DATABASE_URL": "postgresql://pooler/db", "CHATKEEP_POOL_MODE": "transaction"}
        )
    with pytest.raises(SettingsError, match="CHATKEEP_POOL_MODE"):
        settings_from_env({"CHATKEEP_POOL_MODE": "statement"})


@THROUGH_PGBOUNCER
async def test_requests_go_through_pgbouncer_and_the_listener_does_not(
    client: Client, pgbouncer: PgBouncer, database_url: str
) -> None:
    _, url = new_conversation()
    assert (await client.post(url, json=messages_body("through the pooler"))).status_code == 201
    assert (await client.get(url)).json()["items"][0]["content"] == "through the pooler"

    async def listening() -> bool:
        return bool(client.app.state.keyring.listening)

    await eventually(listening)
    # The pool's connections are PgBouncer's clients; the listener's LISTEN is on the server.
    names = pooler_clients(pgbouncer)
    assert "chatkeep" in names
    assert LISTENER not in names
    assert await listeners_at(database_url, 1)


async def test_a_key_revoked_through_pgbouncer_is_refused_by_every_worker(
    pgbouncer: PgBouncer, database_url: str
) -> None:
    key = await create_key(database_url, ALL_PERMISSIONS)
    parsed = apikeys.parse(key)
    assert parsed is not None
    async with two_workers_through(
        pgbouncer, database_url, key, key_cache_seconds=NEVER_EXPIRES
    ) as client:
        # Each worker listens on a connection of its own to the server, not through PgBouncer
        # (else, not listening, it would not trust its cache: the test would prove nothing).
        await eventually(lambda: listeners_at(database_url, 2))
        assert LISTENER not in pooler_clients(pgbouncer)
        # Both workers cache the key (each request may reach either).
        for _ in range(10):
            assert (await client.get("/v1/conversations")).status_code == 200
        # Revoked by a transaction that itself goes through PgBouncer (unnamed statements).
        conn = await asyncpg.connect(pgbouncer.url(database_url), statement_cache_size=0)
        try:
            await keys.revoke(conn, key_id=parsed.key_id)
        finally:
            await conn.close()

        async def refused_everywhere() -> bool:
            answers = [(await client.get("/v1/conversations")).status_code for _ in range(10)]
            return set(answers) == {401}

        await eventually(refused_everywhere)


async def test_an_event_stream_sees_appends_made_through_pgbouncer(
    pgbouncer: PgBouncer, database_url: str, api_key: str
) -> None:
    async with two_workers_through(pgbouncer, database_url, api_key) as client:
        conversation_id, url = new_conversation()
        assert (await client.post(url, json=messages_body("first"))).status_code == 201
        async with open_stream(client, f"/v1/conversations/{conversation_id}/events") as stream:
            assert await stream.next() is not None  # the stream's opening (retry)
            # Concurrent appends on connections of their own: both workers write, through the
            # pooler, at once.
            responses = await asyncio.gather(
                *(client.post(url, json=messages_body(f"m{i}")) for i in range(10))
            )
            assert {response.status_code for response in responses} == {201}
            # Bounded as a whole: a stream that only sends heartbeats must fail the test.
            async with asyncio.timeout(SETTLE_SECONDS):
                events = await stream.take(10)
        assert sorted(event.json()["content"] for event in events) == sorted(
            f"m{i}" for i in range(10)
        )


@THROUGH_PGBOUNCER
async def test_the_prune_takes_its_lock_on_a_session_of_its_own(
    client: Client, db: psycopg.Connection
) -> None:
    created = await client.post("/v1/conversations", json={"title": "due"})
    conversation_id = created.json()["id"]
    db.execute(
        "UPDATE conversations SET expires_at = now() - interval '1 second' WHERE id = %s",
        [conversation_id],
    )
    pruner = client.app.state.pruner
    # Another session (a worker elsewhere, or `chatkeep prune`) holds the lock: skipped.
    db.execute("SELECT pg_advisory_lock(hashtextextended('chatkeep.prune', 0))")
    assert await pruner.run_once() is None
    db.execute("SELECT pg_advisory_unlock(hashtextextended('chatkeep.prune', 0))")
    erased = await pruner.run_once()
    assert erased is not None
    assert erased.conversations == 1
    # The lock went with the prune: nobody holds it.
    held = db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    assert held == (0,)


@THROUGH_PGBOUNCER
async def test_a_users_export_streams_through_a_session_of_its_own(client: Client) -> None:
    for user in ("ann", "bob"):
        created = await client.post("/v1/conversations", json={"user_id": user})
        url = f"/v1/conversations/{created.json()['id']}/messages"
        await client.post(url, json=messages_body("a", "b"))
    # Twice each: an export's cursors (named statements) must leave nothing behind.
    for user in ("ann", "bob", "ann", "bob"):
        exported = await client.get(f"/v1/users/{user}/export")
        assert exported.status_code == 200, exported.text
        assert exported.text.count('"content"') == 2


def test_migrate_goes_to_the_direct_url(empty_database_url: str) -> None:
    # DATABASE_URL names a pooler that is not even there: migrations must not use it.
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://nobody:x@127.0.0.1:{_free_port()}/chatkeep",
        "CHATKEEP_POOL_MODE": "transaction",
        "CHATKEEP_DIRECT_DATABASE_URL": empty_database_url,
    }
    migrated = subprocess.run(
        [CHATKEEP, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('conversations') IS NOT NULL").fetchone() == (True,)


def test_check_tries_the_pooler(pgbouncer: PgBouncer, database_url: str) -> None:
    # Checks run on the direct URL; the pooler (DATABASE_URL) is tried as the pool uses it.
    route = pgbouncer.route(database_url)
    env = {
        **os.environ,
        "DATABASE_URL": route["database_url"],
        "CHATKEEP_POOL_MODE": route["pool_mode"],
        "CHATKEEP_DIRECT_DATABASE_URL": route["direct_database_url"],
    }
    checked = subprocess.run(
        [CHATKEEP, "check"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "pool mode: transaction" in checked.stdout
    assert "pooler:    ok" in checked.stdout
