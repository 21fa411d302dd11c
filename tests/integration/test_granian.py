"""`chatkeep serve --server granian` (README "Choosing the HTTP server"): two granian workers
run the app's lifespan (pool, listener, hub), serve reads and writes, stream live events, and
stop cleanly on SIGTERM; a SIGTERM that comes while workers still start stops them too, within
CHATKEEP_STOP_TIMEOUT_SECONDS. Skipped without the granian extra."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from service.db.embedded import _free_port
from tests.helpers import bearer, messages_body, new_conversation
from tests.live import CHATKEEP, Drained, service_env, wait_ready
from tests.sse import open_stream

pytest.importorskip("granian")


STOP_TIMEOUT_SECONDS = 3
WORKERS = 2


@contextmanager
def started_granian(database_url: str, port: int) -> Iterator[Drained]:
    """The server process for the block; killed after it if it is still running."""
    process = Drained(
        [CHATKEEP, "serve", "--server", "granian", "--workers", str(WORKERS), "--port", str(port)],
        # info: granian says when each worker has started.
        env=service_env(
            database_url, log_level="info", stop_timeout_seconds=str(STOP_TIMEOUT_SECONDS)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ).drain()
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def wait_all_workers_started(process: Drained) -> None:
    """/health/ready answers from whichever worker is up first; a clean stop needs them all."""
    deadline = time.monotonic() + 60
    while sum("Started worker" in line for line in process.printed) < WORKERS:
        assert time.monotonic() < deadline, "".join(process.printed)
        time.sleep(0.1)


@contextmanager
def granian_service(database_url: str) -> Iterator[tuple[str, Drained]]:
    port = _free_port()
    with started_granian(database_url, port) as process:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, process)
        wait_all_workers_started(process)
        yield base, process


async def test_granian_serves_the_app_its_streams_and_stops_on_sigterm(
    database_url: str, api_key: str
) -> None:
    with granian_service(database_url) as (base, process):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=30) as client:
            conversation_id, url = new_conversation()
            first = await client.post(url, json=messages_body("first"))
            assert first.status_code == 201, first.text
            # uvicorn names itself in every response; granian does not.
            assert first.headers.get("server") != "uvicorn"
            async with open_stream(client, f"/v1/conversations/{conversation_id}/events") as stream:
                assert stream.response.headers["content-type"].startswith("text/event-stream")
                assert await stream.next() is not None  # the stream's opening (retry) block
                second = await client.post(url, json=messages_body("second"))
                assert second.status_code == 201, second.text
                [event] = await stream.take(1)
            assert event.event == "message.created"
            assert event.json()["content"] == "second"
            page = await client.get(url)
            assert [m["content"] for m in page.json()["items"]] == ["first", "second"]
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert time.monotonic() - started < 20
        assert "unhandled error" not in output, output


@pytest.mark.parametrize("after_seconds", [0.3, 0.6, 0.9, 1.5])
def test_a_sigterm_while_workers_start_still_stops_them_in_bounded_time(
    database_url: str, after_seconds: float
) -> None:
    # granian drops a SIGTERM that a worker gets during its start-up; the stop timeout kills
    # such a worker instead of waiting for it forever.
    with started_granian(database_url, _free_port()) as process:
        time.sleep(after_seconds)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=STOP_TIMEOUT_SECONDS + 20)
        assert process.poll() is not None, output
        assert "unhandled error" not in output, output
