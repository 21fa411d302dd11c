"""Identity settings: anonymous access, JWT secret and audience, CORS, local no-auth mode."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core.settings import SettingsError
from tests.helpers import JWT_SECRET, assert_problem, bearer, user_token
from tests.integration.conftest import Client, make_settings

SESSION = {"X-Session-ID": "visitor-0123456789abcdef"}
ORIGIN = "https://chat.example"


@asynccontextmanager
async def client_with(database_url: str, **settings: str) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(make_settings(database_url, **settings))) as client:
        yield client


async def test_visitors_are_refused_unless_anonymous_access_is_on(database_url: str) -> None:
    async with client_with(database_url) as client:
        assert_problem(await client.get("/v1/conversations", headers=SESSION), 401, "X-Session-ID")
        problem = assert_problem(await client.get("/v1/conversations"), 401, "Authorization")
        assert "X-Session-ID" not in problem["detail"]
    async with client_with(database_url, allow_anonymous="true") as client:
        assert (await client.get("/v1/conversations", headers=SESSION)).status_code == 200


async def test_user_tokens_need_the_secret(database_url: str) -> None:
    async with client_with(database_url) as client:
        response = await client.get("/v1/conversations", headers=bearer(user_token("alice")))
        assert "CHATKEEP_JWT_SECRET" in assert_problem(response, 401)["detail"]


def test_a_short_jwt_secret_is_refused(database_url: str) -> None:
    with pytest.raises(SettingsError, match="CHATKEEP_JWT_SECRET"):
        make_settings(database_url, jwt_secret="short")


async def test_the_audience_is_checked_when_configured(database_url: str) -> None:
    async with client_with(database_url, jwt_secret=JWT_SECRET, jwt_audience="chatkeep") as client:
        for token in (user_token("alice"), user_token("alice", aud="another-service")):
            assert_problem(await client.get("/v1/conversations", headers=bearer(token)), 401)
        right = bearer(user_token("alice", aud="chatkeep"))
        assert (await client.get("/v1/conversations", headers=right)).status_code == 200


async def test_cors_lets_configured_origins_send_session_ids(database_url: str) -> None:
    async with client_with(
        database_url, allow_anonymous="true", cors_origins=f"{ORIGIN}, https://other.example"
    ) as client:
        preflight = await client.options(
            "/v1/conversations",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-session-id, content-type",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "x-session-id" in preflight.headers["access-control-allow-headers"].lower()
        response = await client.get("/v1/conversations", headers={"Origin": ORIGIN, **SESSION})
        assert response.headers["access-control-allow-origin"] == ORIGIN
        stranger = await client.get(
            "/v1/conversations", headers={"Origin": "https://evil.example", **SESSION}
        )
        assert "access-control-allow-origin" not in stranger.headers


async def test_no_cors_headers_by_default(client: Client) -> None:
    response = await client.get("/v1/conversations", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


async def test_local_no_auth_mode_is_explicit_and_loud(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="chatkeep"):
        async with client_with(
            database_url, insecure_no_auth="true", jwt_secret=JWT_SECRET
        ) as client:
            assert (await client.post("/v1/conversations", json={})).status_code == 201
            assert (await client.delete("/v1/users/alice")).status_code == 200
            # Credentials that are sent are still checked.
            forged = bearer(user_token("alice", secret="x" * 40))
            assert_problem(await client.get("/v1/conversations", headers=forged), 401)
    assert "INSECURE_NO_AUTH" in caplog.text
