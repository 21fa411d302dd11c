"""The admission gate (CHATKEEP_MAX_IN_FLIGHT, CHATKEEP_ADMISSION_WAIT_MS) on a real server:
with its one slot held by a request stuck on a row lock, others get a quick 503 with
Retry-After, never a 500; health checks and event streams still get through; with the setting
0 nothing is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import psycopg

from tests.live import live_service

TURN = {"messages": [{"role": "user", "content": "hello"}]}
# Far more than the gate's 50 ms wait, far less than the pool's 5 s acquire timeout.
QUICK_SECONDS = 2.0


@contextmanager
def locked(database_url: str, conversation_id: str) -> Iterator[None]:
    """The conversation's row locked by another session until the block ends: an append to
    it waits on the lock, holding its admission slot."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", [conversation_id])
        yield
        conn.rollback()


async def waiting_on_a_lock(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for _ in range(200):
            found = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND application_name = 'chatkeep'"
            )
            row = await found.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the append never waited on the lock")


@asynccontextmanager
async def server(
    database_url: str, api_key: str, **settings: str
) -> AsyncIterator[httpx.AsyncClient]:
    with live_service(database_url, pool_max_size="4", **settings) as (base, _):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ) as client:
            yield client


async def conversation(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/conversations", json={})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@asynccontextmanager
async def one_append_stuck(client: httpx.AsyncClient, database_url: str) -> AsyncIterator[str]:
    """For the block, an append waits on its conversation's row lock, holding its admission
    slot; yields the conversation's messages path. The append is answered after the block."""
    conversation_id = await conversation(client)
    path = f"/v1/conversations/{conversation_id}/messages"
    with locked(database_url, conversation_id):
        stuck = asyncio.create_task(client.post(path, json=TURN))
        await waiting_on_a_lock(database_url)
        yield path
    assert (await stuck).status_code == 201


async def test_past_the_limit_requests_get_a_quick_503_with_retry_after(
    database_url: str, api_key: str
) -> None:
    async with server(database_url, api_key, max_in_flight="1", admission_wait_ms="50") as client:
        async with one_append_stuck(client, database_url) as path:
            started = time.monotonic()
            reads = await asyncio.gather(*(client.get(path) for _ in range(5)))
            elapsed = time.monotonic() - started
            assert [read.status_code for read in reads] == [503] * 5
            for read in reads:
                assert read.headers["content-type"].startswith("application/problem+json")
                assert int(read.headers["Retry-After"]) >= 1
                assert "capacity" in read.json()["detail"]
            assert elapsed < QUICK_SECONDS
            # Not gated: the load balancer's probe and a live stream.
            assert (await client.get("/health/ready")).status_code == 200
            events = path.removesuffix("/messages") + "/events"
            async with client.stream("GET", events) as live:
                assert live.status_code == 200
        assert (await client.get(path)).status_code == 200


async def test_a_refused_request_costs_no_more_than_routing(
    database_url: str, api_key: str
) -> None:
    """The gate comes before authentication and validation: what it refuses is never
    authenticated (a bad key gets the 503, not a 401) nor parsed (a bad body: not a 422)."""
    async with server(database_url, api_key, max_in_flight="1", admission_wait_ms="50") as client:
        async with one_append_stuck(client, database_url) as path:
            bad_key = await client.get(path, headers={"Authorization": "Bearer ck_wrong"})
            bad_body = await client.post(path, json={"messages": "not a list"})
            assert [bad_key.status_code, bad_body.status_code] == [503, 503]
            # Not gated: the liveness probe.
            assert (await client.get("/health/live")).status_code == 200
        unauthenticated = await client.get(path, headers={"Authorization": "Bearer ck_wrong"})
        assert unauthenticated.status_code == 401


async def test_a_request_that_waits_for_a_slot_within_the_budget_is_served(
    database_url: str, api_key: str
) -> None:
    async with server(database_url, api_key, max_in_flight="1", admission_wait_ms="5000") as client:
        async with one_append_stuck(client, database_url) as path:
            queued = asyncio.create_task(client.get(path))
            await asyncio.sleep(0.3)
            assert not queued.done()
        read = await queued
        assert read.status_code == 200
        assert len(read.json()["items"]) == 1


async def test_with_the_limit_at_0_nothing_is_refused(database_url: str, api_key: str) -> None:
    async with (
        server(database_url, api_key, max_in_flight="0", admission_wait_ms="0") as client,
        one_append_stuck(client, database_url) as path,
    ):
        reads = await asyncio.gather(*(client.get(path) for _ in range(3)))
        assert [read.status_code for read in reads] == [200] * 3
