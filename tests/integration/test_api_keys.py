"""API keys: cached per worker, yet a revocation is refused at once; secrets compared in constant
time; keys stored only as hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth.keyring import LISTENER_NAME
from service.core import apikeys
from service.core.principal import ALL_PERMISSIONS
from tests.helpers import assert_problem, bearer, create_key
from tests.integration.conftest import Client, make_settings

# Long enough that only a notification, never expiry, can explain a refused key.
NEVER_EXPIRES = "3600"
SETTLE_SECONDS = 10.0


def key_id_of(key: str) -> str:
    parsed = apikeys.parse(key)
    assert parsed is not None
    return parsed.key_id


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until an async condition holds (a notification or reconnection arrives)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def cached_key(database_url: str, db: psycopg.Connection) -> AsyncIterator[Client]:
    """A client whose API key the app has cached (cache lifetime: an hour), then revoked with
    notifications switched off: only the cache still lets the key in."""
    key = await create_key(database_url, ALL_PERMISSIONS)
    settings = make_settings(database_url, key_cache_seconds=NEVER_EXPIRES)
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.headers.update(bearer(key))
        await eventually(lambda: listening(client))
        assert (await client.get("/v1/conversations")).status_code == 200
        db.execute("ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed")
        db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", [key_id_of(key)])
        yield client


async def listening(client: Client) -> bool:
    """Whether the app's key change listener is connected."""
    return bool(client.app.state.keyring.listening)


async def refused(client: Client) -> bool:
    return (await client.get("/v1/conversations")).status_code == 401


async def test_a_revoked_key_is_refused_without_waiting_for_the_cache(
    database_url: str, db: psycopg.Connection
) -> None:
    async with cached_key(database_url, db) as client:
        assert (await client.get("/v1/conversations")).status_code == 200  # proof of the cache
        # Through the trigger (as `chatkeep keys revoke` does), the worker hears of it at once.
        db.execute("ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed")
        db.execute("UPDATE api_keys SET name = 'revoked'")
        await eventually(lambda: refused(client))
        assert_problem(await client.get("/v1/conversations"), 401, "Authorization")


async def test_the_cache_is_not_trusted_while_the_listener_is_down(
    database_url: str, db: psycopg.Connection
) -> None:
    async with cached_key(database_url, db) as client:
        # The revocation's notification was lost: so is the listener's connection now.
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database()",
            [LISTENER_NAME],
        )
        await eventually(lambda: refused(client))
        # And the listener comes back by itself.
        await eventually(lambda: listening(client))


async def test_key_secrets_are_compared_in_constant_time(
    anonymous_client: Client, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong_secret = api_key[:16] + ("A" if api_key[16] != "A" else "B") + api_key[17:]
    assert_problem(
        await anonymous_client.get("/v1/conversations", headers=bearer(wrong_secret)), 401
    )
    assert len(compared) == 1
    assert (
        await anonymous_client.get("/v1/conversations", headers=bearer(api_key))
    ).status_code == 200
    assert len(compared) == 2


def test_keys_are_stored_only_as_hashes(api_key: str, db: psycopg.Connection) -> None:
    stored = db.execute("SELECT id, secret_hash, name FROM api_keys").fetchall()
    assert len(stored) == 1
    key_id, secret_hash, _ = stored[0]
    secret = api_key.removeprefix(f"ck_{key_id}_")
    assert bytes(secret_hash) == hashlib.sha256(secret.encode()).digest()
    dump = db.execute("SELECT string_agg(k::text, '') FROM api_keys k").fetchone()
    assert dump is not None
    assert secret not in dump[0]


def test_key_format() -> None:
    new = apikeys.generate()
    parsed = apikeys.parse(new.token)
    assert parsed is not None
    assert parsed.key_id == new.key_id
    assert apikeys.secret_matches(parsed, new.secret_hash)
    assert apikeys.generate().token != new.token
    for malformed in ("", "ck_", new.token + "x", new.token.replace("ck_", "pk_"), new.token[:-1]):
        assert apikeys.parse(malformed) is None
