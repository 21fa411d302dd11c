"""Conversation state: merge patches, versions as ETags, conditional writes (If-Match), and a
turn's state change committed with its messages."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import assert_problem, messages_body, new_conversation, stored_counts
from tests.live import live_service

Client = AsyncTestClient[Litestar]
MERGE = {"Content-Type": "application/merge-patch+json"}


async def _create(client: Client, **fields: object) -> dict[str, object]:
    response = await client.post("/v1/conversations", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    assert response.headers["etag"] == f'"{body["version"]}"'
    return body


async def test_a_merge_patch_sets_and_removes_nested_keys_and_keeps_the_rest(
    client: Client,
) -> None:
    state = {"status": "open", "fields": {"name": "Ada", "age": 36}, "lang": "en"}
    created = await _create(client, metadata=state)
    url = f"/v1/conversations/{created['id']}"
    patch = {"metadata": {"status": "filling", "fields": {"age": None, "city": "Paris"}}}
    merged = await client.patch(url, json=patch, headers=MERGE)
    assert merged.status_code == 200, merged.text
    assert merged.json()["metadata"] == {
        "status": "filling",
        "fields": {"name": "Ada", "city": "Paris"},
        "lang": "en",
    }
    # Plain JSON keeps its meaning: the metadata is replaced whole.
    replaced = await client.patch(url, json={"metadata": {"only": 1}})
    assert replaced.json()["metadata"] == {"only": 1}


async def test_every_write_moves_the_version_and_reads_carry_it_as_etag(client: Client) -> None:
    created = await _create(client, title="t")
    url = f"/v1/conversations/{created['id']}"
    read = await client.get(url)
    assert read.headers["etag"] == f'"{created["version"]}"'
    appended = await client.post(f"{url}/messages", json=messages_body("hi"))
    assert appended.status_code == 201
    version_after_append = int(appended.headers["etag"].strip('"'))
    assert version_after_append == created["version"] + 1  # type: ignore[operator]
    patched = await client.patch(url, json={"title": "u"})
    assert patched.json()["version"] == version_after_append + 1
    assert (await client.get(url)).headers["etag"] == f'"{version_after_append + 1}"'


async def test_if_match_makes_patch_delete_and_append_conditional(
    client: Client, db: psycopg.Connection
) -> None:
    created = await _create(client)
    url = f"/v1/conversations/{created['id']}"
    stale = f'"{created["version"]}"'
    moved = await client.patch(url, json={"metadata": {"a": 1}}, headers={"If-Match": stale})
    assert moved.status_code == 200
    current = moved.headers["etag"]

    refused = await client.patch(url, json={"metadata": {"b": 2}}, headers={"If-Match": stale})
    assert_problem(refused, 412, "If-Match")
    assert (await client.get(url)).json()["metadata"] == {"a": 1}

    late_turn = await client.post(
        f"{url}/messages", json=messages_body("late"), headers={"If-Match": stale}
    )
    assert_problem(late_turn, 412, "If-Match")
    assert stored_counts(db, str(created["id"]))[0] == 0

    turn = await client.post(
        f"{url}/messages", json=messages_body("on time"), headers={"If-Match": current}
    )
    assert turn.status_code == 201
    assert_problem(await client.delete(url, headers={"If-Match": current}), 412, "If-Match")
    gone = await client.delete(url, headers={"If-Match": f'"1", {turn.headers["etag"]}'})
    assert gone.status_code == 204


async def test_if_match_star_and_missing_conversations(client: Client) -> None:
    _, messages_url = new_conversation()
    # "*" asks for an existing conversation: an append must not create one.
    creating = await client.post(messages_url, json=messages_body("x"), headers={"If-Match": "*"})
    assert_problem(creating, 412, "If-Match")
    created = await _create(client)
    url = f"/v1/conversations/{created['id']}"
    assert (await client.patch(url, json={"title": "x"}, headers={"If-Match": "*"})).is_success
    missing = f"/v1/conversations/{uuid.uuid4()}"
    assert_problem(await client.patch(missing, json={}, headers={"If-Match": '"1"'}), 404)


async def test_a_malformed_if_match_is_refused_naming_the_header(client: Client) -> None:
    created = await _create(client)
    url = f"/v1/conversations/{created['id']}"
    for value in ("1", 'W/"1"', '"abc"', '"1",,', '"0"'):
        response = await client.patch(url, json={"title": "x"}, headers={"If-Match": value})
        assert_problem(response, 422, "If-Match")
    assert (await client.get(url)).json()["version"] == created["version"]


async def test_a_turn_and_its_state_change_commit_together(
    client: Client, db: psycopg.Connection
) -> None:
    created = await _create(client, metadata={"step": 1, "fields": {"name": "Ada"}})
    url = f"/v1/conversations/{created['id']}"
    turn = {
        **messages_body("my city is Paris", id=str(uuid.uuid4())),
        "conversation": {"metadata": {"step": 2, "fields": {"city": "Paris"}}},
    }
    stored = await client.post(f"{url}/messages", json=turn)
    assert stored.status_code == 201, stored.text
    after = (await client.get(url)).json()
    assert after["metadata"] == {"step": 2, "fields": {"name": "Ada", "city": "Paris"}}
    assert stored.headers["etag"] == f'"{after["version"]}"'

    # A retry stores nothing new, so it applies nothing either.
    retried = await client.post(f"{url}/messages", json=turn)
    assert retried.status_code == 201
    assert (await client.get(url)).json()["version"] == after["version"]

    # A turn that fails leaves the state as it was, and the state change that fails (the merged
    # metadata outgrows its limit) leaves the messages unwritten.
    clashing = {**turn, "conversation": {"metadata": {"step": 3}}}
    clashing["messages"] = [{**turn["messages"][0], "content": "changed"}]
    assert_problem(await client.post(f"{url}/messages", json=clashing), 409, "messages[0].id")
    # Each patch is within the metadata limit (64 KiB); what they merge to is not.
    half = {f"k{n}": "x" * 1000 for n in range(40)}
    rest = {f"k{n}": "x" * 1000 for n in range(40, 70)}
    first = await client.post(
        f"{url}/messages", json={**messages_body("one"), "conversation": {"metadata": half}}
    )
    assert first.status_code == 201
    count_before = stored_counts(db, str(created["id"]))[0]
    too_big = await client.post(
        f"{url}/messages", json={**messages_body("two"), "conversation": {"metadata": rest}}
    )
    assert_problem(too_big, 413, "conversation.metadata")
    assert stored_counts(db, str(created["id"]))[0] == count_before
    assert (await client.get(url)).json()["metadata"]["step"] == 2


async def test_bad_state_patches_are_refused_naming_the_field(client: Client) -> None:
    created = await _create(client)
    url = f"/v1/conversations/{created['id']}"
    for body, field in (
        ({"metadata": []}, "metadata"),
        ({"metadata": {"a": "\u0000"}}, "metadata.a"),
        ({"id": str(uuid.uuid4())}, "id"),
    ):
        response = await client.patch(url, json=body, headers=MERGE)
        assert response.status_code in (400, 422), response.text
        assert response.json().get("field") == field, response.json()
    bad_turn = {**messages_body("x"), "conversation": {"metadata": {"a": "\u0000"}}}
    assert_problem(await client.post(f"{url}/messages", json=bad_turn), 422)


async def _patch_with_retry(http: httpx.AsyncClient, url: str, increments: int) -> int:
    """Read, add one to the counter, write back conditionally; retry on 412. Returns retries."""
    retries = 0
    for _ in range(increments):
        while True:
            read = await http.get(url)
            counter = read.json()["metadata"].get("counter", 0)
            written = await http.patch(
                url,
                json={"metadata": {"counter": counter + 1}},
                headers={"If-Match": read.headers["etag"], **MERGE},
            )
            if written.status_code == 200:
                break
            assert written.status_code == 412, written.text
            retries += 1
    return retries


async def test_concurrent_patchers_on_two_workers_lose_no_update(
    database_url: str, api_key: str
) -> None:
    with live_service(database_url, workers="2") as (base, _):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
        ) as http:
            created = (await http.post("/v1/conversations", json={})).json()
            url = f"/v1/conversations/{created['id']}"
            patchers, increments = 6, 10
            retries = await asyncio.gather(
                *(_patch_with_retry(http, url, increments) for _ in range(patchers))
            )
            final = (await http.get(url)).json()
            assert final["metadata"]["counter"] == patchers * increments
            assert sum(retries) > 0  # they did collide, and If-Match caught every collision

            # Without If-Match, merge patches of different keys still all survive: each is
            # applied by one statement to the row as it is.
            await asyncio.gather(
                *(
                    http.patch(url, json={"metadata": {f"key{n}": n}}, headers=MERGE)
                    for n in range(20)
                )
            )
            merged = (await http.get(url)).json()["metadata"]
            assert all(merged[f"key{n}"] == n for n in range(20))
