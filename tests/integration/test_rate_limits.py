"""Rate limits: requests per user or visitor, failed authentications per client address (429
with Retry-After), and the key ring's memory of unknown keys, which keeps a flood of bogus keys
away from the database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth import keyring as keyring_module
from service.auth.keyring import KeyRing
from service.auth.limits import RateLimit
from service.core.settings import Settings
from service.db.pool import create_pool
from tests.helpers import JWT_SECRET, assert_problem, bearer, user_token
from tests.integration.conftest import Client, make_settings

PER_MINUTE = 5
LIMITS = {"requests_per_minute": str(PER_MINUTE), "failed_auth_per_minute": str(PER_MINUTE)}


def bogus_key() -> str:
    return f"ck_{secrets.token_hex(6)}_{'A' * 43}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, jwt_secret=JWT_SECRET, allow_anonymous="true", **LIMITS)


def assert_rate_limited(response: object, setting: str) -> None:
    problem = assert_problem(response, 429)  # type: ignore[arg-type]
    assert setting in problem["detail"]
    retry_after = int(response.headers["retry-after"])  # type: ignore[attr-defined]
    assert 1 <= retry_after <= 60


@pytest.mark.parametrize(
    "headers",
    [bearer(user_token("alice")), {"X-Session-ID": "visitor-rate-0123456789"}],
    ids=["user", "visitor"],
)
async def test_a_user_or_visitor_over_its_rate_is_429_with_retry_after(
    anonymous_client: Client, api_key: str, headers: dict[str, str]
) -> None:
    for _ in range(PER_MINUTE):
        assert (await anonymous_client.get("/v1/conversations", headers=headers)).status_code == 200
    refused = await anonymous_client.get("/v1/conversations", headers=headers)
    assert_rate_limited(refused, "CHATKEEP_REQUESTS_PER_MINUTE")
    # Others are not held back: another user, and API keys (unlimited by default).
    other = bearer(user_token("bob"))
    assert (await anonymous_client.get("/v1/conversations", headers=other)).status_code == 200
    for _ in range(3 * PER_MINUTE):
        response = await anonymous_client.get("/v1/conversations", headers=bearer(api_key))
        assert response.status_code == 200


async def test_failed_authentications_from_one_address_are_429_before_any_lookup(
    anonymous_client: Client, app: Litestar, api_key: str
) -> None:
    failures = [bearer(bogus_key()), bearer(user_token("alice", secret="x" * 40)), bearer("ck_x")]
    for attempt in range(PER_MINUTE):
        response = await anonymous_client.get("/v1/conversations", headers=failures[attempt % 3])
        assert_problem(response, 401)
    keyring: KeyRing = app.state.keyring
    lookups = keyring.database_lookups
    for _ in range(20):
        response = await anonymous_client.get("/v1/conversations", headers=bearer(bogus_key()))
        assert_rate_limited(response, "CHATKEEP_FAILED_AUTH_PER_MINUTE")
    assert keyring.database_lookups == lookups
    # The address is refused until it has waited, whatever it sends.
    response = await anonymous_client.get("/v1/conversations", headers=bearer(api_key))
    assert_rate_limited(response, "CHATKEEP_FAILED_AUTH_PER_MINUTE")


@pytest.fixture
async def unlimited(database_url: str) -> AsyncIterator[tuple[Client, Litestar]]:
    app = create_app(make_settings(database_url, failed_auth_per_minute="0"))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client, app


async def test_a_flood_repeating_a_bogus_key_reaches_the_database_once(
    unlimited: tuple[Client, Litestar],
) -> None:
    client, app = unlimited
    key = bogus_key()
    responses = [await client.get("/v1/conversations", headers=bearer(key)) for _ in range(200)]
    assert {response.status_code for response in responses} == {401}
    assert app.state.keyring.database_lookups == 1


async def test_an_unknown_key_is_looked_up_again_after_a_few_seconds(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring_module, "UNKNOWN_KEY_SECONDS", 0.2)
    pool = await create_pool(settings)
    try:
        ring = KeyRing(pool, ttl=60, acquire_timeout=5)
        assert await ring.lookup("000000000000") is None
        assert await ring.lookup("000000000000") is None
        assert ring.database_lookups == 1
        await asyncio.sleep(0.3)
        assert await ring.lookup("000000000000") is None
        assert ring.database_lookups == 2
    finally:
        await pool.close()


def test_the_limit_allows_its_rate_then_says_how_long_to_wait() -> None:
    limit = RateLimit(2)
    assert limit.hit("a") == 0
    assert limit.wait("a") == 0
    assert limit.hit("a") == 0
    refused = limit.hit("a")
    assert 0 < refused <= 60
    assert 0 < limit.wait("a") <= 60
    assert limit.hit("b") == 0  # callers are counted apart
