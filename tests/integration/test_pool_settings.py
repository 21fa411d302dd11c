"""The pool honours its settings: queries per connection, idle lifetime, and a minimum size of 0
(the serverless profile of the README) from start-up to serving requests."""

from __future__ import annotations

import asyncio

import asyncpg
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core.settings import Settings
from service.db.pool import create_pool
from tests.helpers import bearer
from tests.integration.conftest import make_settings

CYCLES = 5


async def backend_pids(pool: asyncpg.Pool, cycles: int = CYCLES) -> list[int]:
    """The server process serving each of ``cycles`` check-outs of one query each."""
    pids = []
    for _ in range(cycles):
        async with pool.acquire() as conn:
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
    return pids


async def pids_with(settings: Settings) -> list[int]:
    pool = await create_pool(settings)
    try:
        return await backend_pids(pool)
    finally:
        await pool.close()


async def test_a_connection_is_replaced_after_max_queries(database_url: str) -> None:
    one_connection = {"pool_min_size": "1", "pool_max_size": "1"}
    assert len(set(await pids_with(make_settings(database_url, **one_connection)))) == 1
    replaced = await pids_with(make_settings(database_url, **one_connection, pool_max_queries="1"))
    assert len(set(replaced)) == CYCLES


async def test_an_idle_connection_is_closed_after_the_idle_lifetime(database_url: str) -> None:
    # asyncpg keeps pool_min_size connections open however long they idle.
    settings = make_settings(
        database_url, pool_min_size="0", pool_max_size="1", pool_idle_lifetime="0.2"
    )
    pool = await create_pool(settings)
    try:
        (first,) = await backend_pids(pool, 1)
        assert pool.get_size() == 1
        await asyncio.sleep(0.8)
        assert pool.get_size() == 0
        (second,) = await backend_pids(pool, 1)
        assert second != first
    finally:
        await pool.close()


async def test_the_serverless_profile_serves_from_an_empty_pool(
    database_url: str, api_key: str
) -> None:
    settings = make_settings(database_url, pool_min_size="0", pool_idle_lifetime="0.2")
    async with AsyncTestClient(app=create_app(settings)) as client:
        pool: asyncpg.Pool = client.app.state.pool
        assert pool.get_size() == 0  # nothing opened at start-up
        assert (await client.get("/health/ready")).status_code == 200
        listed = await client.get("/v1/conversations", headers=bearer(api_key))
        assert listed.status_code == 200
        assert pool.get_size() == 1
        await asyncio.sleep(0.8)
        assert pool.get_size() == 0  # idle connections closed again
        assert (await client.get("/v1/conversations", headers=bearer(api_key))).status_code == 200
