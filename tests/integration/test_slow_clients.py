"""Slow and stalled clients hold no database connection: with three times the pool's size in
uploads that stop mid-body and downloads that stop reading, other requests still get answers
at once."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

import httpx

from tests.helpers import bearer
from tests.live import live_service

POOL = 2
STALLED = 3 * POOL
# Larger than what the kernel buffers on loopback, so a download that is not read blocks the
# server mid-body.
LARGE_FILE = os.urandom(24 * 1024 * 1024)


@contextlib.contextmanager
def connections(host: str, port: int, requests: list[bytes]) -> Iterator[list[socket.socket]]:
    """Raw connections that each send their request and then neither send nor read more."""
    opened = []
    try:
        for request in requests:
            connection = socket.create_connection((host, port), timeout=5)
            connection.sendall(request)
            opened.append(connection)
        yield opened
    finally:
        for connection in opened:
            connection.close()


def stalled_upload(conversation_id: str, key: str) -> bytes:
    """Headers and the first piece of a chunked upload; the rest never comes."""
    return (
        (
            f"POST /v1/conversations/{conversation_id}/files?filename=slow.bin HTTP/1.1\r\n"
            f"Host: test\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            "400\r\n"
        ).encode()
        + b"x" * 1024
        + b"\r\n"
    )


def stalled_download(conversation_id: str, file_id: str, key: str) -> bytes:
    return (
        f"GET /v1/conversations/{conversation_id}/files/{file_id}/content HTTP/1.1\r\n"
        f"Host: test\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()


def test_stalled_uploads_and_downloads_do_not_starve_other_requests(
    database_url: str, api_key: str
) -> None:
    settings = {"pool_min_size": "1", "pool_max_size": str(POOL), "pool_acquire_timeout": "5"}
    with live_service(database_url, **settings) as (base, _):
        client = httpx.Client(base_url=base, headers=bearer(api_key), timeout=60)
        conversation = client.post("/v1/conversations", json={}).json()["id"]
        client.post(
            f"/v1/conversations/{conversation}/messages",
            json={"messages": [{"role": "user", "content": "still here"}]},
        )
        stored = client.post(
            f"/v1/conversations/{conversation}/files",
            params={"filename": "large.bin"},
            content=LARGE_FILE,
        )
        assert stored.status_code == 201, stored.text
        host, port = base.removeprefix("http://").split(":")
        requests = [stalled_upload(conversation, api_key) for _ in range(STALLED)]
        requests += [
            stalled_download(conversation, stored.json()["id"], api_key) for _ in range(STALLED)
        ]
        with connections(host, int(port), requests):
            time.sleep(1)  # the stalled requests are in; the downloads have filled their buffers
            reader = httpx.Client(base_url=base, headers=bearer(api_key), timeout=1)
            for _ in range(5):
                started = time.monotonic()
                response = reader.get(f"/v1/conversations/{conversation}/messages")
                assert response.status_code == 200, response.text
                assert time.monotonic() - started < 1
                assert response.json()["items"][0]["content"] == "still here"
