"""Hostile HTTP against a real server: lying Content-Length, header floods, invalid UTF-8, path
traversal. Each is a clean 4xx (or a closed connection), and the service keeps serving."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live import live_service

# Far below the body limit it announces: a server that waited for the body would hang here.
PROMPT_SECONDS = 5.0


@pytest.fixture
def server(database_url: str, api_key: str) -> Iterator[tuple[str, int, str]]:
    with live_service(database_url, max_body_bytes="65536") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port), api_key


def exchange(host: str, port: int, request: bytes) -> bytes:
    """Send raw bytes, return what comes back until the server stops sending."""
    with socket.create_connection((host, port), timeout=PROMPT_SECONDS) as connection:
        # The server may close on us mid-request; what it answered still counts.
        with contextlib.suppress(OSError):
            connection.sendall(request)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def status_of(response: bytes) -> int | None:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else None


def request(method: str, path: str, key: str, headers: str = "", body: bytes = b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{headers}\r\n"
    ).encode() + body


def still_serving(host: str, port: int, key: str) -> bool:
    response = httpx.get(
        f"http://{host}:{port}/v1/conversations", headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: tuple[str, int, str]) -> None:
    host, port, key = server
    started = time.monotonic()
    answer = exchange(
        host,
        port,
        request("POST", "/v1/conversations", key, "Content-Length: 1073741824\r\n", b"{"),
    )
    assert status_of(answer) == 413, answer[:300]
    assert b"application/problem+json" in answer
    assert time.monotonic() - started < PROMPT_SECONDS
    assert still_serving(host, port, key)


@pytest.mark.parametrize(
    "flood",
    [
        "".join(f"X-Flood-{n}: {'v' * 20}\r\n" for n in range(5000)),
        f"X-Huge: {'h' * 200_000}\r\n",
    ],
    ids=["many headers", "one huge header"],
)
def test_header_floods_are_refused(server: tuple[str, int, str], flood: str) -> None:
    host, port, key = server
    answer = exchange(host, port, request("GET", "/v1/conversations", key, flood))
    assert status_of(answer) == 431, answer[:300]
    assert b"application/problem+json" in answer
    assert still_serving(host, port, key)


def test_invalid_utf8_and_path_traversal_are_4xx(server: tuple[str, int, str]) -> None:
    host, port, key = server
    body = b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}'
    path = "/v1/conversations/3f1c0a6e-0000-4000-8000-000000000000/messages"
    answer = exchange(
        host, port, request("POST", path, key, f"Content-Length: {len(body)}\r\n", body)
    )
    assert status_of(answer) == 400, answer[:300]
    for traversal in (
        "/v1/conversations/..%2F..%2Fetc%2Fpasswd",
        "/v1/conversations/../../etc/passwd",
        "/v1/conversations/%2e%2e/%2e%2e/schema",
    ):
        status = status_of(exchange(host, port, request("GET", traversal, key)))
        assert status is not None, traversal
        assert 400 <= status < 500, traversal
    assert still_serving(host, port, key)
