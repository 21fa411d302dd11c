"""Attachments against a real server: concurrent uploads of one content, uploads racing
deletes, a chunked upload over the limit, and memory that does not grow with the file."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import psycopg

from tests.helpers import bearer
from tests.integration.test_files import assert_no_orphans, storage
from tests.live import live_service, peak_rss_mib

MIB = 1024 * 1024


async def new_conversation(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/conversations", json={})
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def upload(client: httpx.AsyncClient, conversation_id: str, content: bytes) -> httpx.Response:
    return await client.post(
        f"/v1/conversations/{conversation_id}/files",
        params={"filename": "same.bin"},
        content=content,
    )


async def test_concurrent_uploads_of_the_same_content_store_it_once(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    content = os.urandom(600 * 1024)
    conversations = [await new_conversation(live_client) for _ in range(4)]
    responses = await asyncio.gather(
        *(upload(live_client, conversations[n % 4], content) for n in range(16))
    )
    assert [response.status_code for response in responses] == [201] * 16
    assert {response.json()["sha256"] for response in responses} == {
        hashlib.sha256(content).hexdigest()
    }
    assert storage(db) == (16, 1, 3)
    assert_no_orphans(db)


async def test_uploads_racing_deletes_of_the_same_content_lose_nothing(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    """While files with some content are deleted, new files with that content keep their bytes:
    the delete's cleanup and the upload's reuse decide under one lock."""
    content = os.urandom(300 * 1024)
    conversation_id = await new_conversation(live_client)
    files_url = f"/v1/conversations/{conversation_id}/files"

    async def upload_then_delete() -> None:
        for _ in range(10):
            created = await upload(live_client, conversation_id, content)
            assert created.status_code == 201, created.text
            deleted = await live_client.delete(f"{files_url}/{created.json()['id']}")
            assert deleted.status_code == 204

    async def upload_and_keep() -> list[str]:
        kept = []
        for _ in range(10):
            created = await upload(live_client, conversation_id, content)
            assert created.status_code == 201, created.text
            kept.append(created.json()["id"])
        return kept

    keeper = asyncio.create_task(upload_and_keep())
    await asyncio.gather(*(upload_then_delete() for _ in range(3)))
    kept = await keeper
    for file_id in kept:
        download = await live_client.get(f"{files_url}/{file_id}/content")
        assert download.content == content
    assert storage(db) == (10, 1, 2)
    assert_no_orphans(db)


async def test_a_chunked_upload_is_cut_off_at_the_limit(
    database_url: str, api_key: str, db: psycopg.Connection
) -> None:
    with live_service(database_url, max_file_bytes=str(MIB)) as (base, _):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key)) as client:
            conversation_id = await new_conversation(client)

            async def endless() -> AsyncIterator[bytes]:  # no Content-Length, more than allowed
                for _ in range(64):
                    yield os.urandom(64 * 1024)

            response = await client.post(
                f"/v1/conversations/{conversation_id}/files",
                params={"filename": "stream.bin"},
                content=endless(),
            )
    assert response.status_code == 413, response.text
    assert response.json()["field"] == "file"
    assert storage(db) == (0, 0, 0)


async def test_a_large_file_streams_through_in_constant_memory(
    database_url: str, api_key: str, db: psycopg.Connection
) -> None:
    """80 MiB up and down again: the worker's peak memory grows by far less than the file."""
    size = 80 * MIB
    with live_service(
        database_url, max_file_bytes=str(size), max_conversation_file_bytes=str(size)
    ) as (
        base,
        process,
    ):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=120) as client:
            conversation_id = await new_conversation(client)
            baseline = peak_rss_mib(process.pid)
            digest = hashlib.sha256()

            async def generated() -> AsyncIterator[bytes]:
                block = os.urandom(MIB)
                for n in range(size // MIB):
                    piece = block[n:] + block[:n]
                    digest.update(piece)
                    yield piece

            created = await client.post(
                f"/v1/conversations/{conversation_id}/files",
                params={"filename": "big.bin"},
                content=generated(),
            )
            assert created.status_code == 201, created.text
            assert created.json()["sha256"] == digest.hexdigest()
            downloaded = hashlib.sha256()
            url = f"/v1/conversations/{conversation_id}/files/{created.json()['id']}/content"
            async with client.stream("GET", url) as response:
                async for piece in response.aiter_bytes():
                    downloaded.update(piece)
            assert downloaded.hexdigest() == digest.hexdigest()
            growth = peak_rss_mib(process.pid) - baseline
    print(f"80 MiB upload + download: peak RSS grew {growth:.1f} MiB over {baseline:.0f} MiB")
    assert growth < 30
    assert_no_orphans(db)


async def test_concurrent_uploads_cannot_pass_the_conversation_cap_together(
    database_url: str, api_key: str, db: psycopg.Connection
) -> None:
    """Each upload alone fits; together they would not. The cap holds: an upload that waited
    for the conversation's lock counts the files committed meanwhile."""
    piece = 300 * 1024
    with live_service(database_url, max_conversation_file_bytes=str(MIB)) as (base, _):
        async with httpx.AsyncClient(base_url=base, headers=bearer(api_key), timeout=60) as client:
            conversation_id = await new_conversation(client)
            responses = await asyncio.gather(
                *(upload(client, conversation_id, os.urandom(piece)) for _ in range(10))
            )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 3 + [413] * 7, statuses
    total = db.execute("SELECT sum(size) FROM files").fetchone()
    assert total == (3 * piece,)
    assert_no_orphans(db)
