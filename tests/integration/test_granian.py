"""`chatkeep serve --server granian` (README "Choosing the HTTP server"): two granian workers
run the app's lifespan (pool, listener, hub), serve reads and writes, stream live events, and
stop cleanly on SIGTERM. Skipped without the granian extra."""

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
from tests.live import CHATKEEP, service_env, wait_ready
from tests.sse import open_stream

pytest.importorskip("granian")


@contextmanager
def granian_service(database_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    process = subprocess.Popen(
        [CHATKEEP, "serve", "--server", "granian", "--workers", "2", "--port", str(port)],
        env=service_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


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
