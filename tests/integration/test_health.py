"""Probes, OpenAPI, and behaviour when the database is missing or behind on migrations."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core.principal import ALL_PERMISSIONS
from service.core.settings import Settings
from service.db import migrations
from service.db.embedded import NON_DURABLE, EmbeddedPostgres, _free_port
from tests.helpers import JWT_SECRET, assert_problem, bearer, create_key, user_token
from tests.integration.conftest import Client, make_settings


async def test_live_and_ready(client: Client) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": True, "pending_migrations": []}


async def test_not_ready_until_migrated(empty_database_url: str) -> None:
    settings = make_settings(empty_database_url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        before = await client.get("/health/ready")
        assert before.status_code == 503
        assert before.json()["pending_migrations"] == migrations.expected_migrations()
        migrations.apply(empty_database_url)
        assert (await client.get("/health/ready")).status_code == 200


def unreachable_settings() -> Settings:
    url = f"postgresql://nobody@127.0.0.1:{_free_port()}/nothing"
    return make_settings(url, connect_timeout="2", pool_acquire_timeout="2", jwt_secret=JWT_SECRET)


async def test_database_down_is_503_with_retry_after_not_500() -> None:
    async with AsyncTestClient(app=create_app(unreachable_settings())) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        assert ready.json()["database"] is False
        assert (await client.get("/health/live")).status_code == 200
        user = bearer(user_token("alice"))
        # An API key cannot even be checked without the database.
        some_key = bearer(f"ck_{'0' * 12}_{'x' * 43}")
        for response in (
            await client.get(f"/v1/conversations/{uuid.uuid4()}", headers=user),
            await client.post("/v1/conversations", json={}, headers=user),
            await client.post(
                f"/v1/conversations/{uuid.uuid4()}/messages",
                json={"messages": [{"role": "user", "content": "x"}]},
                headers=user,
            ),
            await client.get("/v1/conversations", headers=some_key),
        ):
            assert_problem(response, 503)
            assert response.headers["retry-after"]


async def test_openapi_documents_the_api(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert "/v1/conversations/{conversation_id}/messages" in paths
    assert {"get", "post", "delete"} <= set(paths["/v1/conversations/{conversation_id}/messages"])
    assert "/v1/conversations/{conversation_id}/messages/{message_id}" in paths
    assert "/health/ready" in paths
    assert "/v1/users/{user_id}/claim" in paths
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "session"}
    assert paths["/v1/conversations"]["get"]["security"] == [{"bearer": []}, {"session": []}]


async def test_unknown_route_and_method_are_problems(client: Client) -> None:
    assert_problem(await client.get("/v2/nothing"), 404)
    assert_problem(await client.put("/v1/conversations"), 405)


async def test_recovers_by_itself_when_the_database_comes_back() -> None:
    directory = Path(tempfile.mkdtemp(prefix="chatkeep-outage-"))
    server = EmbeddedPostgres(directory, server_options=NON_DURABLE)
    try:
        url = server.start()
        migrations.apply(url)
        server.stop()
        settings = make_settings(url, connect_timeout="2", pool_acquire_timeout="2")
        async with AsyncTestClient(app=create_app(settings)) as client:
            assert (await client.get("/health/ready")).status_code == 503
            some_key = bearer(f"ck_{'0' * 12}_{'x' * 43}")
            assert_problem(await client.post("/v1/conversations", json={}, headers=some_key), 503)
            assert server.start() == url  # same port: the data directory remembers it
            assert (await client.get("/health/ready")).status_code == 200
            key = bearer(await create_key(url, ALL_PERMISSIONS))
            assert (await client.post("/v1/conversations", json={}, headers=key)).status_code == 201
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
