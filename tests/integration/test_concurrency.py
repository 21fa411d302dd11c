"""Many writers on one conversation, against a real server process so that the requests really
run at once: seq stays gapless and unique, retries store once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg

from tests.helpers import messages_body, new_conversation, stored_counts

WRITERS = 40


async def test_concurrent_appends_get_gapless_unique_seqs(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    conversation_id, url = new_conversation()
    # Every writer races to create the conversation too.
    responses = await asyncio.gather(
        *(live_client.post(url, json=messages_body(f"w{n}-a", f"w{n}-b")) for n in range(WRITERS))
    )
    assert all(response.status_code == 201 for response in responses)
    for response in responses:
        seqs = [item["seq"] for item in response.json()["items"]]
        assert seqs[1] == seqs[0] + 1  # a batch's messages stay together, in order

    rows = db.execute(
        "SELECT seq FROM messages WHERE conversation_id = %s ORDER BY seq", (conversation_id,)
    ).fetchall()
    assert [seq for (seq,) in rows] == list(range(1, 2 * WRITERS + 1))
    assert stored_counts(db, conversation_id) == (2 * WRITERS, 2 * WRITERS, 2 * WRITERS)


async def test_concurrent_retries_of_one_message_store_it_once(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    conversation_id, url = new_conversation()
    body = {"messages": [{"id": str(uuid.uuid4()), "role": "user", "content": "once"}]}
    responses = await asyncio.gather(*(live_client.post(url, json=body) for _ in range(20)))
    assert {response.status_code for response in responses} == {201}
    assert len({response.text for response in responses}) == 1
    assert stored_counts(db, conversation_id) == (1, 1, 1)


async def test_appends_and_deletes_interleaved_keep_counts_true(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    conversation_id, url = new_conversation()
    first = (await live_client.post(url, json=messages_body(*[f"m{n}" for n in range(20)]))).json()
    deletions = [live_client.delete(f"{url}/{item['id']}") for item in first["items"][::2]]
    appends = [live_client.post(url, json=messages_body("more")) for _ in range(10)]
    await asyncio.gather(*deletions, *appends)
    assert stored_counts(db, conversation_id) == (20, 20, 30)
