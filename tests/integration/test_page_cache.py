"""Conditional and cached history pages (README "Conditional and cached reads"): a page's ETag
changes with every kind of write, If-None-Match answers 304, the cache serves the bytes the
uncached path would, and no worker ever serves a page older than an acknowledged write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core.page_cache import PageCache
from tests.integration.conftest import make_settings
from tests.live import live_service

Client = AsyncTestClient[Litestar]
MERGE = {"content-type": "application/merge-patch+json"}


async def _conversation(client: Client, count: int = 3, **message: object) -> str:
    conversation = str(uuid.uuid4())
    batch = [{"role": "user", "content": f"m{n}", **message} for n in range(count)]
    reply = await client.post(
        f"/v1/conversations/{conversation}/messages", json={"messages": batch}
    )
    assert reply.status_code == 201, reply.text
    return conversation


async def test_a_page_answers_304_to_its_own_etag_and_not_to_another_querys(
    client: Client,
) -> None:
    conversation = await _conversation(client)
    url = f"/v1/conversations/{conversation}/messages"
    first = await client.get(url)
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    again = await client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    # Weak comparison, lists and "*" as RFC 9110 has them.
    assert (await client.get(url, headers={"If-None-Match": tag[2:]})).status_code == 304
    listed = f'"nope", {tag}'
    assert (await client.get(url, headers={"If-None-Match": listed})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304
    other = await client.get(url, params={"limit": 2}, headers={"If-None-Match": tag})
    assert other.status_code == 200
    assert other.headers["etag"] != tag
    assert (await client.get(url, headers={"If-None-Match": '"junk'})).status_code == 200


async def test_a_missing_conversation_is_a_404_with_or_without_if_none_match(
    client: Client,
) -> None:
    url = f"/v1/conversations/{uuid.uuid4()}/messages"
    assert (await client.get(url)).status_code == 404
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 404


async def test_someone_elses_conversation_is_a_404_even_when_cached(client: Client) -> None:
    conversation = await _conversation(client)
    url = f"/v1/conversations/{conversation}/messages"
    tag = (await client.get(url)).headers["etag"]  # cached now
    async with AsyncTestClient(app=client.app) as visitor:
        visitor.headers["X-Session-ID"] = "s" * 32
        assert (await visitor.get(url)).status_code == 404
        assert (await visitor.get(url, headers={"If-None-Match": tag})).status_code == 404


async def _append(client: Client, base: str, message_id: str) -> None:
    await client.post(f"{base}/messages", json={"messages": [{"role": "user", "content": "x"}]})


async def _patch_conversation(client: Client, base: str, message_id: str) -> None:
    await client.patch(base, json={"title": "t"})


async def _patch_message(client: Client, base: str, message_id: str) -> None:
    await client.patch(f"{base}/messages/{message_id}", json={"content": "patched"})


async def _append_content(client: Client, base: str, message_id: str) -> None:
    reply = await client.post(f"{base}/messages/{message_id}/append", json={"content": " more"})
    assert reply.status_code == 200, reply.text


async def _delete_message(client: Client, base: str, message_id: str) -> None:
    assert (await client.delete(f"{base}/messages/{message_id}")).status_code == 204


async def _clear(client: Client, base: str, message_id: str) -> None:
    assert (await client.delete(f"{base}/messages")).status_code == 200


async def _recreate(client: Client, base: str, message_id: str) -> None:
    # Deleted and created again under the same id: the version starts over at 1.
    assert (await client.delete(base)).status_code == 204
    await client.post(f"{base}/messages", json={"messages": [{"role": "user", "content": "m0"}]})


WRITES: list[Callable[[Client, str, str], Awaitable[None]]] = [
    _append,
    _patch_conversation,
    _patch_message,
    _append_content,
    _delete_message,
    _clear,
    _recreate,
]


async def test_every_kind_of_write_changes_the_etag_and_the_page_served(client: Client) -> None:
    for write in WRITES:
        conversation = await _conversation(client, count=1, status="in_progress")
        base = f"/v1/conversations/{conversation}"
        before = await client.get(f"{base}/messages")
        # Twice: the second read is the cache's.
        assert (await client.get(f"{base}/messages")).content == before.content
        message_id = before.json()["items"][0]["id"]
        await write(client, base, message_id)
        after = await client.get(
            f"{base}/messages", headers={"If-None-Match": before.headers["etag"]}
        )
        assert after.status_code == 200, write.__name__
        assert after.headers["etag"] != before.headers["etag"], write.__name__
        fresh = await _uncached(client, f"{base}/messages")
        assert after.content == fresh, write.__name__


async def _uncached(client: Client, url: str) -> bytes:
    """The page as a server without the cache reads it."""
    app: Litestar = client.app
    settings = make_settings(app.state.settings.database_url, page_cache_bytes="0")
    async with AsyncTestClient(app=create_app(settings)) as plain:
        plain.headers.update(client.headers)
        reply = await plain.get(url)
        assert plain.app.state.page_cache.bytes == 0
        return reply.content


async def test_cached_pages_are_the_uncached_bytes(client: Client) -> None:
    conversation = await _conversation(client, count=60)
    url = f"/v1/conversations/{conversation}/messages"
    cache: PageCache = client.app.state.page_cache
    queries: list[dict[str, str | int]] = [
        {},
        {"limit": 7, "order": "desc"},
        {"after": 3},
        {"before": 40, "limit": 5},
    ]
    for params in queries:
        first = await client.get(url, params=params)
        cached_bytes = cache.bytes
        second = await client.get(url, params=params)
        assert cache.bytes == cached_bytes  # served from the cache, nothing new stored
        assert (
            first.content
            == second.content
            == await _uncached(client, f"{url}?{httpx.QueryParams(params)}")
        )
        assert second.headers["content-type"] == "application/json"
        assert first.headers["etag"] == second.headers["etag"]


async def test_a_worker_drops_the_pages_of_a_conversation_it_writes_to(client: Client) -> None:
    conversation = await _conversation(client)
    other = await _conversation(client)
    url = f"/v1/conversations/{conversation}/messages"
    cache: PageCache = client.app.state.page_cache
    for params in ({}, {"limit": 2}):
        assert (await client.get(url, params=params)).status_code == 200
    await client.get(f"/v1/conversations/{other}/messages")
    assert len(cache) == 3
    appended = await client.post(url, json={"messages": [{"role": "user", "content": "new"}]})
    assert appended.status_code == 201
    assert len(cache) == 1  # the other conversation's page stays
    page = await client.get(url)
    assert page.json()["items"][-1]["content"] == "new"
    message_id = page.json()["items"][-1]["id"]
    assert len(cache) == 2
    patched = await client.patch(f"{url}/{message_id}", json={"content": "newer"})
    assert patched.status_code == 200, patched.text
    assert len(cache) == 1
    assert (await client.get(url)).json()["items"][-1]["content"] == "newer"
    reply = await client.post(
        url, json={"messages": [{"role": "assistant", "content": "", "status": "in_progress"}]}
    )
    reply_id = reply.json()["items"][0]["id"]
    assert (await client.get(url)).status_code == 200
    assert len(cache) == 2
    extended = await client.post(f"{url}/{reply_id}/append", json={"content": "streamed"})
    assert extended.status_code == 200, extended.text
    assert len(cache) == 1
    assert (await client.get(url)).json()["items"][-1]["content"] == "streamed"


async def test_context_windows_are_not_cached_and_carry_no_page_etag(client: Client) -> None:
    conversation = await _conversation(client)
    cache: PageCache = client.app.state.page_cache
    reply = await client.get(f"/v1/conversations/{conversation}/messages?max_tokens=1000")
    assert reply.status_code == 200
    assert "etag" not in reply.headers
    assert len(cache) == 0


async def test_a_conversation_answers_304_to_its_etag(client: Client) -> None:
    conversation = await _conversation(client)
    url = f"/v1/conversations/{conversation}"
    tag = (await client.get(url)).headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304
    await client.patch(url, json={"title": "new"})
    changed = await client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["title"] == "new"


async def test_two_workers_never_serve_a_page_older_than_an_acknowledged_write(
    database_url: str, api_key: str
) -> None:
    with live_service(database_url, workers="2") as (base, _):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
        ) as http:
            conversation = str(uuid.uuid4())
            url = f"/v1/conversations/{conversation}/messages"

            async def reader() -> None:
                # Keeps both workers' caches warm with the page as it is.
                for _ in range(40):
                    assert (await http.get(url)).status_code in (200, 404)

            async def writer() -> None:
                for n in range(30):
                    written = await http.post(
                        url, json={"messages": [{"role": "user", "content": f"n{n}"}]}
                    )
                    assert written.status_code == 201
                    # Several reads, so both workers answer at least one after each write.
                    for _ in range(4):
                        page = (await http.get(url)).json()
                        assert page["items"][-1]["content"] == f"n{n}"

            await asyncio.gather(writer(), reader(), reader())


async def test_the_workers_cache_keeps_within_its_setting(database_url: str, api_key: str) -> None:
    settings = make_settings(database_url, page_cache_bytes="20000")
    async with AsyncTestClient(app=create_app(settings)) as small:
        small.headers["Authorization"] = f"Bearer {api_key}"
        conversation = await _conversation(small, count=60)
        url = f"/v1/conversations/{conversation}/messages"
        cache: PageCache = small.app.state.page_cache
        for before in range(2, 62):
            reply = await small.get(url, params={"before": before, "limit": 5})
            assert reply.status_code == 200
            assert cache.bytes <= 20000
        assert 1 < len(cache) < 59  # it kept some, and let the oldest go
