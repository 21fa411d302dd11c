"""Memory follows bytes, not counts: a page of large messages stops at the byte budget, and a
JSON body that would decode to far more than its length is refused before decoding. A real
worker's peak RSS stays under 150 MiB meanwhile."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg

from tests.helpers import assert_problem, bearer
from tests.live import live_service, peak_rss_mib

MIB = 1024 * 1024
MESSAGES = 200
RSS_LIMIT_MIB = 150


def large_history(db: psycopg.Connection) -> str:
    """A conversation of MESSAGES messages of 1 MiB each (they compress well on disk)."""
    conversation_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO conversations (id, message_count, last_seq) VALUES (%s, %s, %s)",
        [conversation_id, MESSAGES, MESSAGES],
    )
    db.execute(
        "INSERT INTO messages (conversation_id, seq, id, role, content) "
        "SELECT %s, n, gen_random_uuid(), 'user', repeat(md5(n::text), %s) "
        "FROM generate_series(1, %s) AS n",
        [conversation_id, MIB // 32, MESSAGES],
    )
    return conversation_id


async def test_large_pages_and_amplifying_bodies_stay_within_the_memory_aim(
    database_url: str, api_key: str, db: psycopg.Connection
) -> None:
    conversation_id = large_history(db)
    url = f"/v1/conversations/{conversation_id}/messages"
    with live_service(database_url) as (base, process):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=120) as client:
            pages = await asyncio.gather(
                *(client.get(url, params={"limit": 1000}) for _ in range(6))
            )
            for page in pages:
                assert page.status_code == 200, page.text
                body = page.json()
                # 4 MiB of budget: three messages of 1 MiB and their metadata fit, the fourth
                # would cross it and starts the next page.
                assert [item["seq"] for item in body["items"]] == [198, 199, 200]
                assert body["next_cursor"] == 198
            walked = 0
            cursor: int | None = None
            while True:
                params = {"limit": 1000, **({"before": cursor} if cursor else {})}
                page = await client.get(url, params=params)
                walked += len(page.json()["items"])
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break
            assert walked == MESSAGES
            nested = b'{"messages": [{"role": "user", "content": "x", "metadata": {"a": '
            nested += b"[]," * (5 * MIB) + b"[]}}]}"
            refused = await client.post(
                url, content=nested, headers={"Content-Type": "application/json"}
            )
            assert_problem(refused, 413, "body")
            peak = peak_rss_mib(process.pid)
    print(f"worker peak RSS: {peak:.0f} MiB")
    assert peak < RSS_LIMIT_MIB
