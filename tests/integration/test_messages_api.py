"""The messages resource over HTTP: append, history pages, one message, clear."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.helpers import assert_problem, bearer, messages_body, new_conversation, stored_counts
from tests.integration.conftest import make_settings

Client = AsyncTestClient[Litestar]


async def _conversation_with(client: Client, count: int, **fields: Any) -> str:
    conversation_id = str(uuid.uuid4())
    contents = [f"m{seq}" for seq in range(1, count + 1)]
    for start in range(0, count, 100):
        response = await client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json=messages_body(*contents[start : start + 100], **fields),
        )
        assert response.status_code == 201, response.text
    return conversation_id


async def test_append_creates_conversation_and_assigns_seq(
    client: Client, db: psycopg.Connection
) -> None:
    conversation_id = str(uuid.uuid4())
    body = {
        "user_id": "u1",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi", "topic": "ch1", "metadata": {"cite": [1, 2]}},
            {"role": "assistant", "content": "hello"},
        ],
    }
    response = await client.post(f"/v1/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 201
    items = response.json()["items"]
    assert [item["seq"] for item in items] == [1, 2, 3]
    assert [item["role"] for item in items] == ["system", "user", "assistant"]
    assert items[1]["topic"] == "ch1"
    assert items[1]["metadata"] == {"cite": [1, 2]}
    assert all(item["conversation_id"] == conversation_id for item in items)

    conversation = (await client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["user_id"] == "u1"
    assert conversation["message_count"] == 3
    rows = db.execute(
        "SELECT seq, role, content FROM messages WHERE conversation_id = %s ORDER BY seq",
        (conversation_id,),
    ).fetchall()
    assert rows == [(1, "system", "be brief"), (2, "user", "hi"), (3, "assistant", "hello")]


async def test_default_read_is_latest_page_oldest_first(client: Client) -> None:
    conversation_id = await _conversation_with(client, 120)
    page = (await client.get(f"/v1/conversations/{conversation_id}/messages")).json()
    assert [item["seq"] for item in page["items"]] == list(range(71, 121))
    assert page["next_cursor"] == 71

    older = (
        await client.get(
            f"/v1/conversations/{conversation_id}/messages",
            params={"before": page["next_cursor"], "order": "desc"},
        )
    ).json()
    assert [item["seq"] for item in older["items"]] == list(range(70, 20, -1))
    last = (
        await client.get(f"/v1/conversations/{conversation_id}/messages", params={"before": 21})
    ).json()
    assert [item["seq"] for item in last["items"]] == list(range(1, 21))
    assert last["next_cursor"] is None


async def test_forward_paging_walks_the_whole_history_once(client: Client) -> None:
    conversation_id = await _conversation_with(client, 45)
    seen: list[int] = []
    cursor = 0
    while cursor is not None:
        page = (
            await client.get(
                f"/v1/conversations/{conversation_id}/messages",
                params={"after": cursor, "limit": 10},
            )
        ).json()
        seen.extend(item["seq"] for item in page["items"])
        cursor = page["next_cursor"]
    assert seen == list(range(1, 46))

    window = (
        await client.get(
            f"/v1/conversations/{conversation_id}/messages",
            params={"after": 10, "before": 15, "order": "desc"},
        )
    ).json()
    assert [item["seq"] for item in window["items"]] == [14, 13, 12, 11]


async def test_topic_filter_and_clear_topic(client: Client, db: psycopg.Connection) -> None:
    conversation_id, url = new_conversation()
    await client.post(url, json=messages_body("a1", "a2", topic="alpha"))
    await client.post(url, json=messages_body("b1", topic="beta"))
    await client.post(url, json=messages_body("none"))
    await client.post(url, json=messages_body("a3", topic="alpha"))

    alpha = (await client.get(url, params={"topic": "alpha"})).json()
    assert [item["content"] for item in alpha["items"]] == ["a1", "a2", "a3"]
    page = (await client.get(url, params={"topic": "alpha", "limit": 2})).json()
    assert [item["content"] for item in page["items"]] == ["a2", "a3"]
    assert page["next_cursor"] == 2
    empty = (await client.get(url, params={"topic": "gamma"})).json()
    assert empty == {"items": [], "next_cursor": None}

    cleared = await client.request("DELETE", url, params={"topic": "alpha"})
    assert cleared.status_code == 200
    assert cleared.json() == {"deleted": 3}
    left = (await client.get(url)).json()["items"]
    assert [item["content"] for item in left] == ["b1", "none"]
    assert stored_counts(db, conversation_id) == (2, 2, 5)

    assert (await client.delete(url)).json() == {"deleted": 2}
    assert (await client.delete(url)).json() == {"deleted": 0}
    # seqs are never reused after a clear
    again = (await client.post(url, json=messages_body("after clear"))).json()["items"]
    assert again[0]["seq"] == 6


async def test_get_patch_delete_one_message(client: Client) -> None:
    conversation_id, url = new_conversation()
    stored = (await client.post(url, json=messages_body("a", "partial"))).json()["items"]
    message_url = f"{url}/{stored[1]['id']}"
    assert (await client.get(message_url)).json() == stored[1]

    final = await client.patch(message_url, json={"content": "final", "metadata": {"done": True}})
    assert final.status_code == 200
    assert final.json() == {**stored[1], "content": "final", "metadata": {"done": True}}
    unchanged = await client.patch(message_url, json={})
    assert unchanged.json()["content"] == "final"

    assert (await client.delete(message_url)).status_code == 204
    assert_problem(await client.get(message_url), 404, "message_id")
    assert_problem(await client.delete(message_url), 404, "message_id")
    assert_problem(await client.patch(message_url, json={"content": "x"}), 404, "message_id")
    conversation = (await client.get(f"/v1/conversations/{conversation_id}")).json()
    assert conversation["message_count"] == 1
    assert [item["seq"] for item in (await client.get(url)).json()["items"]] == [1]


async def test_reposting_the_same_ids_is_a_no_op(client: Client, db: psycopg.Connection) -> None:
    conversation_id, url = new_conversation()
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    body = {
        "messages": [
            {"id": ids[0], "role": "user", "content": "q", "metadata": {"n": 1.5}},
            {"id": ids[1], "role": "assistant", "content": "a"},
        ]
    }
    first = await client.post(url, json=body)
    retry = await client.post(url, json=body)
    assert retry.status_code == 201
    assert retry.json() == first.json()

    # A retry that also carries a new message stores only the new one, after the others.
    extended = {"messages": [*body["messages"], {"role": "user", "content": "next"}]}
    items = (await client.post(url, json=extended)).json()["items"]
    assert [item["seq"] for item in items] == [1, 2, 3]
    assert stored_counts(db, conversation_id) == (3, 3, 3)


async def test_same_id_with_different_body_is_409_and_writes_nothing(
    client: Client, db: psycopg.Connection
) -> None:
    conversation_id, url = new_conversation()
    message_id = str(uuid.uuid4())
    await client.post(url, json={"messages": [{"id": message_id, "role": "user", "content": "a"}]})
    conflicting = {
        "messages": [
            {"role": "user", "content": "new one"},
            {"id": message_id, "role": "user", "content": "changed"},
        ]
    }
    assert_problem(await client.post(url, json=conflicting), 409, "messages[1].id")
    rows = db.execute(
        "SELECT content FROM messages WHERE conversation_id = %s", (conversation_id,)
    ).fetchall()
    assert rows == [("a",)]
    assert stored_counts(db, conversation_id) == (1, 1, 1)


async def test_append_rejects_bad_input_and_writes_nothing(
    client: Client, db: psycopg.Connection
) -> None:
    conversation_id, url = new_conversation()
    repeated = str(uuid.uuid4())
    cases: list[tuple[Any, int, str]] = [
        ({"messages": []}, 422, "messages"),
        ({}, 422, "messages"),
        ({"messages": [{"role": "Bot!", "content": "x"}]}, 422, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, 422, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, 422, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "a\u0000b"}]}, 422, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": "x", "topic": "t\u0000"}]},
            422,
            "messages[0].topic",
        ),
        (
            {"messages": [{"role": "user", "content": "x", "metadata": {"k\u0000": 1}}]},
            422,
            "messages[0].metadata.k\u0000",
        ),
        ({"messages": [{"role": "user", "content": "x", "id": "12"}]}, 422, "messages[0].id"),
        (
            {"messages": [{"role": "user", "content": "x", "id": repeated}] * 2},
            422,
            "messages[1].id",
        ),
        (messages_body(*["x"] * 101), 413, "messages"),
        (messages_body("x" * (1024 * 1024 + 1)), 413, "messages[0].content"),
        (messages_body("é" * (512 * 1024 + 1)), 413, "messages[0].content"),
        (
            messages_body("x", metadata={"blob": "y" * (64 * 1024)}),
            413,
            "messages[0].metadata",
        ),
        ({"messages": "nope"}, 422, "messages"),
        ([1, 2], 422, "body"),
    ]
    for body, status, field in cases:
        assert_problem(await client.post(url, json=body), status, field)
    deep: Any = {}
    for _ in range(40):
        deep = {"d": deep}
    assert_problem(await client.post(url, json=messages_body("x", metadata=deep)), 422)
    empty = await client.post(url, content=b"", headers={"content-type": "application/json"})
    assert_problem(empty, 422, "body")
    for raw in (b"{", b"\xff\xfe", b'{"messages": [}'):
        response = await client.post(url, content=raw, headers={"content-type": "application/json"})
        assert_problem(response, 400, "body")
    assert stored_counts(db, conversation_id) == (0, None, None)


async def test_limits_at_the_boundary_are_accepted(client: Client) -> None:
    _, url = new_conversation()
    response = await client.post(url, json=messages_body("x" * (1024 * 1024)))
    assert response.status_code == 201
    batch = await client.post(url, json=messages_body(*["y"] * 100))
    assert [item["seq"] for item in batch.json()["items"]] == list(range(2, 102))


async def test_history_rejects_bad_parameters(client: Client) -> None:
    conversation_id = await _conversation_with(client, 1)
    url = f"/v1/conversations/{conversation_id}/messages"
    cases = [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"before": "-1"}, "before"),
        ({"after": "abc"}, "after"),
        ({"after": str(2**70)}, "after"),
        ({"order": "sideways"}, "order"),
        ({"topic": "a\u0000"}, "topic"),
    ]
    for params, field in cases:
        assert_problem(await client.get(url, params=params), 422, field)
    assert_problem(await client.get(f"{url}/not-a-uuid"), 422, "message_id")


async def test_body_over_the_configured_limit_is_413(database_url: str, api_key: str) -> None:
    settings = make_settings(database_url, max_body_bytes="1000")
    async with AsyncTestClient(app=create_app(settings)) as small_client:
        small_client.headers.update(bearer(api_key))
        url = f"/v1/conversations/{uuid.uuid4()}/messages"
        response = await small_client.post(url, json=messages_body("x" * 2000))
        assert_problem(response, 413, "body")
        assert (await small_client.post(url, json=messages_body("fits"))).status_code == 201


async def test_an_append_naming_another_user_than_the_conversations_is_a_conflict(
    client: Client, db: psycopg.Connection
) -> None:
    """As on create: a user_id that differs from the stored one is a 409, and nothing lands."""
    conversation_id, url = new_conversation()
    assert (
        await client.post(url, json={**messages_body("a"), "user_id": "bob"})
    ).status_code == 201
    assert (
        await client.post(url, json={**messages_body("b"), "user_id": "bob"})
    ).status_code == 201
    assert (await client.post(url, json=messages_body("c"))).status_code == 201
    assert_problem(
        await client.post(url, json={**messages_body("d"), "user_id": "alice"}), 409, "user_id"
    )
    visitor_conversation, visitor_url = new_conversation()  # an anonymous visitor's
    db.execute(
        "INSERT INTO conversations (id, visitor_hash, message_count, last_seq) "
        "VALUES (%s, sha256('visitor'), 0, 0)",
        [visitor_conversation],
    )
    assert_problem(
        await client.post(visitor_url, json={**messages_body("w"), "user_id": "alice"}),
        409,
        "user_id",
    )
    assert stored_counts(db, conversation_id) == (3, 3, 3)
    assert stored_counts(db, visitor_conversation) == (0, 0, 0)


async def test_json_nested_deeper_than_the_decoder_follows_is_a_400(client: Client) -> None:
    _, url = new_conversation()
    deep = '{"messages": [{"role": "user", "content": "x", "metadata": {"a": ' + "[" * 2000
    deep += "]" * 2000 + "}}]}"
    response = await client.post(url, content=deep, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "body")
