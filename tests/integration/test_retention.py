"""Retention: conversations' expires_at, idle visitors' conversations, and the prune that deletes
them (`chatkeep prune`, and the server's own in the background, one worker at a time), against
real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from service.api.pruning import Pruner
from service.app import create_app
from service.cli import main
from service.core.settings import Settings
from tests.helpers import JWT_SECRET, assert_problem
from tests.integration.conftest import Client, make_settings

VISITOR = {"X-Session-ID": "visitor-retention-0123456789"}
OTHER_VISITOR = {"X-Session-ID": "visitor-retention-9876543210"}
# The prune's advisory lock key, as sql/retention.sql takes it.
PRUNE_LOCK = "hashtextextended('chatkeep.prune', 0)"


def soon(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def conversation(client: Client, headers: dict[str, str] | None = None, **body: Any) -> str:
    """A conversation with one message and one file; its id."""
    created = await client.post("/v1/conversations", json=body, headers=headers)
    assert created.status_code == 201, created.text
    conversation_id: str = created.json()["id"]
    appended = await client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"messages": [{"role": "user", "content": "hello"}]},
        headers=headers,
    )
    assert appended.status_code == 201, appended.text
    uploaded = await client.post(
        f"/v1/conversations/{conversation_id}/files",
        params={"filename": "notes.txt"},
        content=conversation_id.encode(),
        headers={"Content-Type": "text/plain", **(headers or {})},
    )
    assert uploaded.status_code == 201, uploaded.text
    return conversation_id


def left(db: psycopg.Connection) -> set[str]:
    return {str(row[0]) for row in db.execute("SELECT id FROM conversations").fetchall()}


def age(db: psycopg.Connection, conversation_id: str, *, days: int) -> None:
    """Make the conversation last written ``days`` ago."""
    db.execute(
        "UPDATE conversations SET updated_at = now() - make_interval(days => %s) WHERE id = %s",
        (days, conversation_id),
    )


def expire(db: psycopg.Connection, conversation_id: str) -> None:
    """Make the conversation's expiry pass."""
    db.execute(
        "UPDATE conversations SET expires_at = now() - interval '1 second' WHERE id = %s",
        (conversation_id,),
    )


def prune(*argv: str) -> int:
    return main(["prune", *argv])


@pytest.fixture
async def visitor(settings: Settings) -> AsyncIterator[Client]:
    """A client without the API key the ``client`` fixture's requests carry (of an app of its
    own: one app's lifespan runs once)."""
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def test_expires_at_is_set_on_create_shown_changed_and_cleared(client: Client) -> None:
    at = soon(days=7)
    created = await client.post("/v1/conversations", json={"expires_at": at})
    assert created.status_code == 201
    body = created.json()
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(at)
    url = f"/v1/conversations/{body['id']}"
    assert (await client.get(url)).json()["expires_at"] == body["expires_at"]
    # Creating the same again is a retry, not a conflict.
    again = await client.post("/v1/conversations", json={"id": body["id"], "expires_at": at})
    assert again.status_code == 200, again.text

    later = soon(days=30)
    patched = await client.patch(url, json={"expires_at": later})
    assert datetime.fromisoformat(patched.json()["expires_at"]) == datetime.fromisoformat(later)
    # A patch leaving it out keeps it; null clears it.
    assert (await client.patch(url, json={"title": "t"})).json()["expires_at"] is not None
    assert (await client.patch(url, json={"expires_at": None})).json()["expires_at"] is None
    # An append's conversation patch may set it too.
    appended = await client.post(
        f"{url}/messages",
        json={"messages": [{"role": "user", "content": "x"}], "conversation": {"expires_at": at}},
    )
    assert appended.status_code == 201
    assert (await client.get(url)).json()["expires_at"] is not None
    # A time already past is due at the next prune.
    past = await client.post("/v1/conversations", json={"expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 201, past.text


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-01T00:00:00",  # no offset: which instant is meant is a guess
        "tomorrow",
        [2030, 1, 1],
        1893456000,  # seconds since 1970: not an RFC 3339 time
    ],
)
async def test_a_bad_expiry_is_a_422_naming_it(client: Client, value: Any) -> None:
    assert_problem(
        await client.post("/v1/conversations", json={"expires_at": value}), 422, "expires_at"
    )
    created = await client.post("/v1/conversations", json={})
    url = f"/v1/conversations/{created.json()['id']}"
    assert_problem(await client.patch(url, json={"expires_at": value}), 422, "expires_at")
    appended = await client.post(
        f"{url}/messages",
        json={
            "messages": [{"role": "user", "content": "x"}],
            "conversation": {"expires_at": value},
        },
    )
    assert_problem(appended, 422, "conversation.expires_at")


@pytest.fixture
def retention_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CHATKEEP_VISITOR_RETENTION_DAYS", "30")
    # Two conversations a batch: the prune below takes several.
    monkeypatch.setenv("CHATKEEP_BULK_DELETE_BATCH", "2")
    return database_url


async def test_prune_deletes_expired_and_idle_visitors_conversations_with_their_files(
    client: Client,
    visitor: Client,
    db: psycopg.Connection,
    retention_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    idle_visitor = await conversation(visitor, VISITOR)
    active_visitor = await conversation(visitor, OTHER_VISITOR)
    old_user = await conversation(client, user_id="alice")
    expired = [await conversation(client, expires_at=soon(days=1)) for _ in range(3)]
    expiring = await conversation(client, expires_at=soon(days=1))
    age(db, idle_visitor, days=31)
    age(db, active_visitor, days=29)
    age(db, old_user, days=400)
    for conversation_id in expired:
        expire(db, conversation_id)
    blobs_before = db.execute("SELECT count(*) FROM blobs").fetchone()

    assert await asyncio.to_thread(prune, "--dry-run") == 0
    assert capsys.readouterr().out == "would prune 4 conversations (4 messages, 4 files)\n"
    assert len(left(db)) == 7

    assert await asyncio.to_thread(prune) == 0
    assert capsys.readouterr().out == "pruned 4 conversations (4 messages, 4 files)\n"
    assert left(db) == {active_visitor, old_user, expiring}
    assert db.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    # The files' bytes went with them (each file here has content of its own).
    assert blobs_before is not None
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (blobs_before[0] - 4,)
    # The visitor's usage followed.
    assert db.execute(
        "SELECT count(*) FROM owner_usage WHERE conversations > 0 AND owner LIKE 'visitor:%'"
    ).fetchone() == (1,)

    assert await asyncio.to_thread(prune) == 0
    assert capsys.readouterr().out == "pruned 0 conversations (0 messages, 0 files)\n"


async def test_visitors_conversations_are_kept_when_retention_is_zero(
    visitor: Client,
    db: psycopg.Connection,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    idle_visitor = await conversation(visitor, VISITOR)
    age(db, idle_visitor, days=3650)
    assert await asyncio.to_thread(prune) == 0
    assert left(db) == {idle_visitor}


async def test_a_prune_while_another_runs_does_nothing_and_says_so(
    client: Client,
    db: psycopg.Connection,
    retention_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expired = await conversation(client, expires_at=soon(days=1))
    expire(db, expired)
    with psycopg.connect(retention_env, autocommit=True) as holder:
        holder.execute(f"SELECT pg_advisory_lock({PRUNE_LOCK})")
        assert await asyncio.to_thread(prune) == 1
        assert "another prune is running" in capsys.readouterr().err
        assert left(db) == {expired}
    assert await asyncio.to_thread(prune) == 0
    assert left(db) == set()


@pytest.fixture
async def two_instances(database_url: str) -> AsyncIterator[list[Pruner]]:
    """Two app instances on one database, each with its background prune every 50 ms."""
    settings = make_settings(
        database_url,
        jwt_secret=JWT_SECRET,
        prune_interval_seconds="0.05",
        visitor_retention_days="1",
    )
    async with AsyncExitStack() as stack:
        pruners = []
        for _ in range(2):
            app = create_app(settings)
            await stack.enter_async_context(AsyncTestClient(app=app))
            pruners.append(app.state.pruner)
        yield pruners


async def wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_server_prunes_in_the_background_one_instance_at_a_time(
    client: Client, db: psycopg.Connection, database_url: str, two_instances: list[Pruner]
) -> None:
    expired = await conversation(client, expires_at=soon(days=1))
    kept = await conversation(client)
    with psycopg.connect(database_url, autocommit=True) as holder:
        # While another session prunes, both instances wake, find the lock taken and skip.
        holder.execute(f"SELECT pg_advisory_lock({PRUNE_LOCK})")
        expire(db, expired)
        before = [pruner.runs for pruner in two_instances]
        await wait_for(lambda: all(pruner.skipped >= 2 for pruner in two_instances))
        assert [pruner.runs for pruner in two_instances] == before
        assert left(db) == {expired, kept}
        holder.execute(f"SELECT pg_advisory_unlock({PRUNE_LOCK})")
    await wait_for(lambda: expired not in left(db))
    assert left(db) == {kept}
    # Exactly one of them deleted it (and counts it once its prune has ended); both go on.
    await wait_for(lambda: sum(p.pruned.conversations for p in two_instances) == 1)
    assert sum(pruner.pruned.files for pruner in two_instances) == 1
    runs = [pruner.runs for pruner in two_instances]
    await wait_for(lambda: all(p.runs > n for p, n in zip(two_instances, runs, strict=True)))
    assert sum(pruner.pruned.conversations for pruner in two_instances) == 1


async def test_the_prune_finds_its_rows_by_index(db: psycopg.Connection) -> None:
    """conversations_expiry and conversations_visitor_idle serve the prune's two searches, as
    the bulk delete's batches make them (oldest written first, a batch at a time), among many
    users' and visitors' conversations."""
    db.execute(
        "INSERT INTO conversations (id, user_id, visitor_hash, updated_at, expires_at) "
        "SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN 'u' || g END, "
        "CASE WHEN g % 2 = 1 THEN sha256(g::text::bytea) END, "
        "now() - make_interval(days => g % 100), "
        "CASE WHEN g % 10 = 0 THEN now() + make_interval(days => g % 50 - 1) END "
        "FROM generate_series(1, 20000) g"
    )
    db.execute("ANALYZE conversations")
    for predicate, index in (
        ("expires_at <= now()", "conversations_expiry"),
        (
            "visitor_hash IS NOT NULL AND updated_at < now() - interval '90 days'",
            "conversations_visitor_idle",
        ),
    ):
        plan = "\n".join(
            str(row[0])
            for row in db.execute(
                f"EXPLAIN SELECT id FROM conversations WHERE {predicate} "
                "ORDER BY updated_at, id LIMIT 500"
            )
        )
        assert index in plan, plan


def test_an_idle_visitor_in_the_settings_is_checked() -> None:
    with pytest.raises(ValueError, match="CHATKEEP_VISITOR_RETENTION_DAYS"):
        make_settings("postgresql://localhost/x", visitor_retention_days="-1")
    with pytest.raises(ValueError, match="CHATKEEP_PRUNE_INTERVAL_SECONDS"):
        make_settings("postgresql://localhost/x", prune_interval_seconds="-5")
