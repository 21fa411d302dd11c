"""Faults on purpose: the service killed mid-batch, the database stopped under load, more
requests than connections, slow statements, SIGTERM with requests in flight, a concurrency soak.
Each ends with the ledger's check: every acknowledged write stored once, nothing half-written."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg

from service.core.principal import ALL_PERMISSIONS
from service.db import migrations
from service.db.embedded import NON_DURABLE, EmbeddedPostgres
from tests.helpers import bearer, create_key
from tests.ledger import Ledger
from tests.live import live_service, peak_rss_mib

WRITERS = 8
# Generous bound on any single request while the database is away: connect (2 s) plus pool
# acquisition (2 s) plus slack for a loaded machine. Hanging past it is the failure.
OUTAGE_REQUEST_BOUND_SECONDS = 15.0
LOCK_CONVERSATION = "SELECT 1 FROM conversations WHERE id = %s FOR UPDATE"
# The per-worker memory aim (bench/REPORT.md measures it under load too).
MEMORY_BOUND_MIB = 150
SOAK_SECONDS = float(os.environ.get("CHATKEEP_SOAK_SECONDS", "4"))


async def write_until(
    client: httpx.AsyncClient, ledger: Ledger, conversation_id: str, stop: asyncio.Event, size: int
) -> list[tuple[int, float]]:
    """One writer appending batches to its conversation until told to stop (or the server
    vanishes); returns (status, seconds) per request. Acknowledged batches are marked."""
    outcomes: list[tuple[int, float]] = []
    while not stop.is_set():
        batch = ledger.batch(conversation_id, size)
        started = time.monotonic()
        try:
            response = await client.post(batch.url, json=batch.body())
        except httpx.TransportError:
            return outcomes
        outcomes.append((response.status_code, time.monotonic() - started))
        batch.acked = response.status_code == 201
        if response.status_code == 503:
            assert response.headers["retry-after"]
            assert response.headers["content-type"].startswith("application/problem+json")
            await asyncio.sleep(0.05)
    return outcomes


async def test_kill_9_mid_batch_leaves_no_partial_batch_and_no_gap(
    database_url: str, db: psycopg.Connection
) -> None:
    key = bearer(await create_key(database_url, ALL_PERMISSIONS))
    ledger = Ledger()
    conversations = [str(uuid.uuid4()) for _ in range(WRITERS)]
    with live_service(database_url) as (base, process):
        async with httpx.AsyncClient(base_url=base, headers=key, timeout=30) as client:
            stop = asyncio.Event()
            writers = [
                asyncio.create_task(write_until(client, ledger, cid, stop, 50))
                for cid in conversations
            ]
            await asyncio.sleep(1.5)
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.gather(*writers)
    verdict = ledger.check(db)
    assert verdict.acknowledged > 0
    assert verdict.unacknowledged_absent + verdict.unacknowledged_stored_whole == WRITERS
    print(f"kill -9: {len(ledger.batches)} batches of 50 sent, {verdict}")

    # After a restart, retrying everything stores each batch exactly once.
    with live_service(database_url) as (base, _):
        async with httpx.AsyncClient(base_url=base, headers=key, timeout=30) as client:
            for batch in ledger.batches:
                response = await client.post(batch.url, json=batch.body())
                assert response.status_code == 201, response.text
                batch.acked = True
    assert ledger.check(db).acknowledged == len(ledger.batches)


@asynccontextmanager
async def stoppable_database() -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    directory = Path(tempfile.mkdtemp(prefix="chatkeep-outage-"))
    server = EmbeddedPostgres(directory, server_options=NON_DURABLE)
    try:
        url = server.start()
        migrations.apply(url)
        yield server, url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_database_outage_under_writer_load_loses_no_acknowledged_write() -> None:
    async with stoppable_database() as (server, url):
        key = bearer(await create_key(url, ALL_PERMISSIONS))
        ledger = Ledger()
        timeouts = {"connect_timeout": "2", "pool_acquire_timeout": "2"}
        with live_service(url, **timeouts) as (base, _):
            async with httpx.AsyncClient(base_url=base, headers=key, timeout=60) as client:
                stop = asyncio.Event()
                writers = [
                    asyncio.create_task(write_until(client, ledger, str(uuid.uuid4()), stop, 2))
                    for _ in range(WRITERS)
                ]
                await asyncio.sleep(1)
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(1)
                assert (await client.get("/health/ready")).status_code == 503
                await asyncio.sleep(2)
                assert await asyncio.to_thread(server.start) == url
                await asyncio.sleep(3)
                stop.set()
                outcomes = [outcome for writer in writers for outcome in await writer]
                assert (await client.get("/health/ready")).status_code == 200
        statuses = Counter(status for status, _ in outcomes)
        assert set(statuses) <= {201, 503}, statuses
        assert statuses[503] > 0, "the outage was not noticed"
        assert max(seconds for _, seconds in outcomes) < OUTAGE_REQUEST_BOUND_SECONDS
        # Recovered without a restart: every writer's last batch went through.
        last_batches = {batch.conversation_id: batch for batch in ledger.batches}
        assert all(batch.acked for batch in last_batches.values())
        with psycopg.connect(url, autocommit=True) as db:
            verdict = ledger.check(db)
        assert verdict.acknowledged == statuses[201]
        slowest = max(seconds for _, seconds in outcomes)
        print(f"outage: {dict(statuses)}, slowest request {slowest:.1f} s, {verdict}")


async def test_overload_queues_then_503_and_slow_statements_are_cut(
    database_url: str, db: psycopg.Connection, api_key: str
) -> None:
    """Two connections, eight requests stuck behind a row lock: two run into the statement
    timeout, six wait for a connection until the acquire timeout. All 503, none 500, no hang."""
    conversation_id = str(uuid.uuid4())
    url = f"/v1/conversations/{conversation_id}/messages"
    body = {"messages": [{"role": "user", "content": "x"}]}
    limits = {"pool_max_size": "2", "pool_acquire_timeout": "0.5", "statement_timeout_ms": "1500"}
    with live_service(database_url, **limits) as (base, _):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=60) as client:
            assert (await client.post(url, json=body)).status_code == 201
            with psycopg.connect(database_url) as locker:
                locker.execute(LOCK_CONVERSATION, [conversation_id])
                started = time.monotonic()
                responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(8)))
                elapsed = time.monotonic() - started
                connections = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chatkeep' "
                    "AND datname = current_database()"
                ).fetchone()
            assert [response.status_code for response in responses] == [503] * 8
            details = Counter(response.json()["detail"] for response in responses)
            print(f"overload: 8 requests, {dict(details)}, {elapsed:.1f} s")
            assert len(details) == 2, details  # busy pool, and cancelled statements
            assert all(response.headers["retry-after"] for response in responses)
            assert elapsed < OUTAGE_REQUEST_BOUND_SECONDS
            assert connections is not None
            assert connections[0] <= 2  # never more than the pool allows
            assert (await client.post(url, json=body)).status_code == 201  # back to normal
    stored = db.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = %s", [conversation_id]
    )
    assert stored.fetchone() == (2,)


async def test_sigterm_finishes_requests_in_flight(
    database_url: str, db: psycopg.Connection
) -> None:
    key = bearer(await create_key(database_url, ALL_PERMISSIONS))
    conversation_id = str(uuid.uuid4())
    ledger = Ledger()
    with live_service(database_url) as (base, process):
        async with httpx.AsyncClient(base_url=base, headers=key, timeout=30) as client:
            first = ledger.batch(conversation_id, 1)
            assert (await client.post(first.url, json=first.body())).status_code == 201
            first.acked = True
            with psycopg.connect(database_url) as locker:
                locker.execute(LOCK_CONVERSATION, [conversation_id])
                batches = [ledger.batch(conversation_id, 3) for _ in range(3)]
                in_flight = [
                    asyncio.create_task(client.post(batch.url, json=batch.body()))
                    for batch in batches
                ]
                await asyncio.sleep(0.5)  # the requests are waiting on the lock now
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
            responses = await asyncio.gather(*in_flight)
        assert [response.status_code for response in responses] == [201] * 3
        for batch in batches:
            batch.acked = True
        assert await asyncio.to_thread(process.wait, 30) == 0
    assert ledger.check(db, one_writer_per_conversation=False).acknowledged == 4


async def test_soak_many_writers_and_readers_on_shared_conversations(
    database_url: str, db: psycopg.Connection, api_key: str
) -> None:
    ledger = Ledger()
    conversations = [str(uuid.uuid4()) for _ in range(3)]
    stop = asyncio.Event()
    reads = Counter[int]()

    async def read_until(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            for conversation_id in conversations:
                page = await client.get(f"/v1/conversations/{conversation_id}/messages?limit=20")
                reads[page.status_code] += 1
                if page.status_code == 200:
                    seqs = [item["seq"] for item in page.json()["items"]]
                    assert seqs == sorted(set(seqs))

    with live_service(database_url) as (base, process):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=60) as client:
            writers = [
                asyncio.create_task(
                    write_until(client, ledger, conversations[n % 3], stop, 1 + n % 4)
                )
                for n in range(12)
            ]
            readers = [asyncio.create_task(read_until(client)) for _ in range(4)]
            await asyncio.sleep(SOAK_SECONDS)
            stop.set()
            outcomes = [outcome for writer in writers for outcome in await writer]
            await asyncio.gather(*readers)
            peak_mib = peak_rss_mib(process.pid)
    assert peak_mib < MEMORY_BOUND_MIB
    assert {status for status, _ in outcomes} == {201}
    assert set(reads) <= {200, 404}
    verdict = ledger.check(db, one_writer_per_conversation=False)
    assert verdict.acknowledged == len(outcomes) == len(ledger.batches)
    print(
        f"soak: {SOAK_SECONDS:g} s, {len(outcomes)} appends, {sum(reads.values())} reads, "
        f"peak RSS {peak_mib:.0f} MiB, {verdict}"
    )
