"""X-Request-ID (README "Observability"): on every response, the caller's when well-formed,
else a new one; on every log line written for the request, in text and in JSON, including a
real server's access log and uvicorn's own lines."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core import logs
from service.db.embedded import _free_port
from tests.helpers import bearer, messages_body, new_conversation
from tests.integration.conftest import Client, make_settings
from tests.live import serve, stop, wait_ready

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_a_response_carries_a_new_id_when_the_request_has_none(client: Client) -> None:
    _, url = new_conversation()
    first = await client.post(url, json=messages_body("hello"))
    second = await client.get(url)
    assert GENERATED.fullmatch(first.headers["x-request-id"])
    assert GENERATED.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "request_id", ["a", "trace-42", "0f8e.Span_7-x", str(uuid.uuid4()), "x" * 128]
)
async def test_a_well_formed_id_is_echoed(client: Client, request_id: str) -> None:
    _, url = new_conversation()
    response = await client.get(url, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id", ["", "x" * 129, "has space", 'quo"te', "new\\nline", "ümlaut", "a/b", "a:b"]
)
async def test_a_malformed_id_is_replaced(client: Client, request_id: str) -> None:
    _, url = new_conversation()
    response = await client.get(url, headers={b"X-Request-ID": request_id.encode()})
    assert GENERATED.fullmatch(response.headers["x-request-id"])


async def test_problems_and_unrouted_requests_carry_it_too(anonymous_client: Client) -> None:
    headers = {"X-Request-ID": "problem-1"}
    unauthorized = await anonymous_client.get("/v1/conversations", headers=headers)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["x-request-id"] == "problem-1"
    unrouted = await anonymous_client.get("/no/such/route", headers=headers)
    assert unrouted.status_code == 404
    assert unrouted.headers["x-request-id"] == "problem-1"


@contextmanager
def captured_logs(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Everything logged meanwhile, through chatkeep's request id filter and ``formatter``."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_every_line_logged_for_a_request_carries_its_id(log_format: str) -> None:
    # A database that is not there: the request logs a warning on its way to a 503.
    settings = make_settings(
        f"postgresql://nobody@127.0.0.1:{_free_port()}/nothing",
        pool_min_size="0",
        connect_timeout="1",
        insecure_no_auth="true",
        log_format=log_format,
    )
    formatter = (
        logs.JsonFormatter() if log_format == "json" else logging.Formatter(logs.TEXT_FORMAT)
    )
    app = create_app(settings)
    with captured_logs(formatter) as out:
        async with AsyncTestClient(app=app) as client:
            _, url = new_conversation()
            response = await client.get(url, headers={"X-Request-ID": "down-7"})
        assert response.status_code == 503
    lines = out.getvalue().splitlines()
    if log_format == "json":
        lines = [
            json.loads(line)["message"] + f" [{json.loads(line)['request_id']}]" for line in lines
        ]
    # (httpx, the test's client, logs the request too: outside the service.)
    for_the_request = [
        line for line in lines if "database unavailable" in line or f'"GET {url}"' in line
    ]
    assert len(for_the_request) == 2, lines  # the warning and the access log line
    for line in for_the_request:
        assert "[down-7]" in line


@contextmanager
def live_output(database_url: str, **settings: str) -> Iterator[tuple[str, list[str]]]:
    """A real server (one worker) and, once it has stopped, every line it printed."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "CHATKEEP_LOG_LEVEL": "info"}
    env.update({f"CHATKEEP_{name.upper()}": value for name, value in settings.items()})
    process = serve(env, port)
    printed: list[str] = []
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield f"http://127.0.0.1:{port}", printed
    finally:
        printed.extend(stop(process).splitlines())


def read_twice(base: str, api_key: str) -> tuple[str, httpx.Response]:
    """An append and a read of it, the read with a request id of the caller's."""
    _, url = new_conversation()
    with httpx.Client(base_url=base, headers=bearer(api_key)) as client:
        assert client.post(url, json=messages_body("hello")).status_code == 201
        response = client.get(url, headers={"X-Request-ID": "live-read-1"})
    assert response.status_code == 200
    return url, response


def test_a_live_servers_access_log_carries_the_id_in_text(database_url: str, api_key: str) -> None:
    with live_output(database_url, access_log="true") as (base, printed):
        url, _ = read_twice(base, api_key)
    access = [line for line in printed if f'"GET {url}" 200' in line]
    assert len(access) == 1, printed
    assert " chatkeep.access [live-read-1] " in access[0]


def test_a_live_server_logs_one_json_object_per_line(database_url: str, api_key: str) -> None:
    with live_output(database_url, access_log="true", log_format="json") as (base, printed):
        url, response = read_twice(base, api_key)
    objects: list[dict[str, Any]] = [json.loads(line) for line in printed if line]
    assert any(line["logger"].startswith("uvicorn") for line in objects)  # uvicorn's own too
    access = [line for line in objects if line.get("path") == url and line["method"] == "GET"]
    assert len(access) == 1, objects
    assert access[0]["request_id"] == response.headers["x-request-id"] == "live-read-1"
    assert access[0]["route"] == "/v1/conversations/{conversation_id}/messages"
    assert access[0]["status"] == 200
    assert access[0]["level"] == "INFO"
    assert isinstance(access[0]["duration_ms"], float)


def test_the_access_log_can_be_switched_off(database_url: str, api_key: str) -> None:
    with live_output(database_url, access_log="false") as (base, printed):
        url, _ = read_twice(base, api_key)
    assert not [line for line in printed if url in line]
    assert any("Application startup complete" in line for line in printed)
