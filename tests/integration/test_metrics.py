"""GET /metrics (README "Observability"): a real two-worker server whose scrapes add up every
worker's counts, labelled by route template; the token that guards it; the pool, database
error, event stream, import and export figures."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from service.api import problems
from service.api.metrics import sample
from service.app import create_app
from service.cli import main
from service.core.settings import Settings
from service.db.pool import checked_out, create_pool
from tests.helpers import assert_problem, bearer, messages_body, new_conversation
from tests.integration.conftest import make_settings
from tests.live import live_service
from tests.sse import EventStream, open_stream, worker_serving

TOKEN = "scrape-token-0123456789"
MESSAGES_ROUTE = "/v1/conversations/{conversation_id}/messages"
READS = 240


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # A client of its own: a new connection, which either worker may accept.
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


@asynccontextmanager
async def two_workers(
    database_url: str, multiproc_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir))
    with live_service(database_url, workers="2", metrics_token=TOKEN) as (base, _process):
        yield base


async def test_every_workers_requests_add_up_by_route_template(
    database_url: str, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a previous run left behind would be counted again (or, like this, break the scrape).
    stale = tmp_path / "counter_1.db"
    stale.write_bytes(b"not a metrics file")
    async with two_workers(database_url, tmp_path, monkeypatch) as base:
        assert not stale.exists()
        conversation_ids = []
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key)) as client:
            for _ in range(3):
                conversation_id, url = new_conversation()
                response = await client.post(url, json=messages_body("hello"))
                assert response.status_code == 201, response.text
                conversation_ids.append(conversation_id)

        async def read(index: int) -> None:
            # No keep-alive: each read may land on either worker.
            async with httpx.AsyncClient(base_url=base, headers=bearer(api_key)) as client:
                conversation_id = conversation_ids[index % 3]
                response = await client.get(f"/v1/conversations/{conversation_id}/messages")
                assert response.status_code == 200, response.text

        for start in range(0, READS, 16):
            await asyncio.gather(*(read(index) for index in range(start, start + 16)))
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key)) as client:
            missing = await client.get(f"/v1/conversations/{uuid.uuid4()}/messages")
            assert missing.status_code == 404
            unrouted = await client.get(f"/nothing/here/{uuid.uuid4()}")
            assert unrouted.status_code == 404

        # Both workers counted into the directory: one file of counters per worker.
        assert len(counter_files(tmp_path)) == 2
        for _ in range(6):  # whichever worker answers, the totals are the server's
            text_scrape = await scrape(base)
            labels = {"route": MESSAGES_ROUTE, "method": "GET"}
            assert (
                value(text_scrape, "chatkeep_http_requests_total", **labels, status="200") == READS
            )
            assert value(text_scrape, "chatkeep_http_requests_total", **labels, status="404") == 1
            assert (
                value(text_scrape, "chatkeep_http_request_duration_seconds_count", **labels)
                == READS + 1
            )
            assert (
                value(
                    text_scrape,
                    "chatkeep_http_requests_total",
                    route="unmatched",
                    method="GET",
                    status="404",
                )
                == 1
            )
            assert value(text_scrape, "chatkeep_db_pool_connections", pool="primary") >= 2
        async with httpx.AsyncClient(base_url=base) as client:
            text = (await client.get("/metrics", headers=bearer(TOKEN))).text
        for conversation_id in conversation_ids:
            assert conversation_id not in text


async def test_open_event_streams_are_counted_over_every_worker(
    database_url: str, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with live_service(database_url, workers="2", metrics_token=TOKEN) as (base, process):
        async with AsyncExitStack() as streams:
            serving: set[int] = set()
            # Held: a stream's line reader, collected, would close its response.
            opened: list[EventStream] = []
            while len(serving) < 2:
                assert len(opened) < 40, "every stream landed on one worker"
                client = await streams.enter_async_context(
                    httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=30)
                )
                stream: EventStream = await streams.enter_async_context(
                    open_stream(client, "/v1/events", params={"user_id": "metrics-user"})
                )
                ready = await stream.next_event()
                assert ready is not None
                assert ready.event == "ready"
                opened.append(stream)
                serving.add(worker_serving(process.pid, stream.server_port()[1]))
            open_now = await scrape(base)
            assert value(open_now, "chatkeep_events_streams_open", kind="owner") == len(opened)
        await asyncio.sleep(0.5)  # the workers notice the clients went away
        closed = await scrape(base)
        assert value(closed, "chatkeep_events_streams_open", kind="owner") == 0


def counter_files(directory: Path) -> set[str]:
    """The pids that wrote counters into a multiprocess directory."""
    names = (re.fullmatch(r"counter_(\d+)\.db", path.name) for path in directory.iterdir())
    return {match.group(1) for match in names if match}


def metrics_app(settings: Settings) -> Any:
    return AsyncTestClient(app=create_app(settings))


async def test_metrics_answer_only_the_token(database_url: str) -> None:
    async with metrics_app(make_settings(database_url, metrics_token=TOKEN)) as client:
        for headers in ({}, bearer("not-the-token-at-all"), {"Authorization": TOKEN}):
            refused = await client.get("/metrics", headers=headers)
            assert_problem(refused, 401, "Authorization")
            assert refused.headers["www-authenticate"].startswith("Bearer")
        answered = await client.get("/metrics", headers=bearer(TOKEN))
        assert answered.status_code == 200
        assert "chatkeep_http_requests_total" in answered.text
        document = (await client.get("/schema/openapi.json")).json()
        assert "/metrics" not in document["paths"]


async def test_without_a_token_there_are_no_metrics(database_url: str) -> None:
    async with metrics_app(make_settings(database_url)) as client:
        assert (await client.get("/metrics", headers=bearer(TOKEN))).status_code == 404


async def test_the_pool_sample_counts_connections_in_use_and_waiters(database_url: str) -> None:
    settings = make_settings(database_url, pool_max_size="1", pool_acquire_timeout="5")
    pool = await create_pool(settings)
    try:
        async with checked_out(pool, 5):
            waiter = asyncio.create_task(_hold(pool))
            await asyncio.sleep(0.2)
            sample({"tests": pool})
            assert REGISTRY.get_sample_value("chatkeep_db_pool_connections", {"pool": "tests"}) == 1
            assert REGISTRY.get_sample_value("chatkeep_db_pool_in_use", {"pool": "tests"}) == 1
            assert REGISTRY.get_sample_value("chatkeep_db_pool_waiters", {"pool": "tests"}) == 1
        await waiter
        sample({"tests": pool})
        assert REGISTRY.get_sample_value("chatkeep_db_pool_in_use", {"pool": "tests"}) == 0
        assert REGISTRY.get_sample_value("chatkeep_db_pool_waiters", {"pool": "tests"}) == 0
    finally:
        await pool.close()


async def _hold(pool: asyncpg.Pool) -> None:
    async with checked_out(pool, 5):
        pass


def test_database_errors_are_counted_by_class() -> None:
    labels = {"error": "DeadlockDetectedError"}
    before = REGISTRY.get_sample_value("chatkeep_db_errors_total", labels) or 0
    problems.from_database(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert REGISTRY.get_sample_value("chatkeep_db_errors_total", labels) == before + 1


async def test_exports_and_imports_are_counted_and_written_for_the_textfile_collector(
    client: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = new_conversation()
    assert (await client.post(url, json=messages_body("one", "two"))).status_code == 201
    monkeypatch.setenv("DATABASE_URL", database_url)
    exported = REGISTRY.get_sample_value("chatkeep_export_records_total", {"kind": "messages"})
    export_file, counters = tmp_path / "export.ndjson", tmp_path / "chatkeep.prom"
    export = ["export", "--output", str(export_file), "--metrics-file", str(counters)]
    # In a thread: the command runs its own event loop.
    assert await asyncio.to_thread(main, export) == 0
    written = samples(counters.read_text())
    assert value(written, "chatkeep_export_records_total", kind="messages") == (exported or 0) + 2

    skipped = REGISTRY.get_sample_value("chatkeep_import_bad_rows_total", {"action": "skipped"})
    import_ = ["import", "ndjson", str(export_file), "--metrics-file", str(counters)]
    assert await asyncio.to_thread(main, import_) == 0
    written = samples(counters.read_text())
    # Everything was there already: nothing imported, nothing bad; the kinds are all reported.
    for kind in ("conversations", "messages", "files", "prompt_versions"):
        assert ("chatkeep_import_records_total", frozenset({("kind", kind)})) in written
    assert value(written, "chatkeep_import_bad_rows_total", action="skipped") == (skipped or 0)


async def test_an_export_over_http_is_counted(client: Any) -> None:
    _, url = new_conversation()
    body = {**messages_body("one", "two", "three"), "user_id": "exported-user"}
    assert (await client.post(url, json=body)).status_code == 201
    labels = {"kind": "messages"}
    before = REGISTRY.get_sample_value("chatkeep_export_records_total", labels) or 0
    response = await client.get("/v1/users/exported-user/export")
    assert response.status_code == 200, response.text
    assert REGISTRY.get_sample_value("chatkeep_export_records_total", labels) == before + 3
