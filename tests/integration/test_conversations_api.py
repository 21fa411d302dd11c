"""The conversations resource over HTTP, against a real database."""

from __future__ import annotations

import uuid

import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import assert_problem, stored_counts

Client = AsyncTestClient[Litestar]


async def test_create_returns_the_stored_conversation(
    client: Client, db: psycopg.Connection
) -> None:
    response = await client.post(
        "/v1/conversations",
        json={"title": "Trip", "user_id": "u1", "metadata": {"lang": "en", "tags": ["a"]}},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Trip"
    assert body["user_id"] == "u1"
    assert body["metadata"] == {"lang": "en", "tags": ["a"]}
    assert body["message_count"] == 0
    assert body["created_at"].endswith("Z")
    row = db.execute(
        "SELECT title, user_id, metadata FROM conversations WHERE id = %s", (body["id"],)
    ).fetchone()
    assert row == ("Trip", "u1", {"lang": "en", "tags": ["a"]})


async def test_create_with_client_id_is_idempotent_and_conflicts_on_difference(
    client: Client,
) -> None:
    conversation_id = str(uuid.uuid4())
    first = await client.post("/v1/conversations", json={"id": conversation_id, "title": "a"})
    again = await client.post("/v1/conversations", json={"id": conversation_id, "title": "a"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    different = await client.post("/v1/conversations", json={"id": conversation_id, "title": "b"})
    assert_problem(different, 409, "id")


async def test_get_patch_delete(client: Client, db: psycopg.Connection) -> None:
    created = (await client.post("/v1/conversations", json={"title": "old"})).json()
    url = f"/v1/conversations/{created['id']}"
    assert (await client.get(url)).json() == created

    patched = await client.patch(url, json={"metadata": {"k": 1}})
    assert patched.status_code == 200
    assert patched.json()["title"] == "old"  # left out, left alone
    assert patched.json()["metadata"] == {"k": 1}
    assert patched.json()["updated_at"] > created["updated_at"]

    cleared = await client.patch(url, json={"title": None})
    assert cleared.json()["title"] is None
    assert cleared.json()["metadata"] == {"k": 1}

    await client.post(f"{url}/messages", json={"messages": [{"role": "user", "content": "x"}]})
    assert (await client.delete(url)).status_code == 204
    assert_problem(await client.get(url), 404, "conversation_id")
    assert_problem(await client.delete(url), 404, "conversation_id")
    assert stored_counts(db, created["id"]) == (0, None, None)


async def test_unknown_conversation_is_404_everywhere(client: Client) -> None:
    url = f"/v1/conversations/{uuid.uuid4()}"
    assert_problem(await client.get(url), 404, "conversation_id")
    assert_problem(await client.patch(url, json={"title": "x"}), 404, "conversation_id")
    assert_problem(await client.delete(url), 404, "conversation_id")
    assert_problem(await client.get(f"{url}/messages"), 404, "conversation_id")
    assert_problem(await client.delete(f"{url}/messages"), 404, "conversation_id")
    assert_problem(await client.get(f"{url}/messages/{uuid.uuid4()}"), 404, "conversation_id")


async def test_list_pages_newest_updated_first_with_keyset_cursor(client: Client) -> None:
    ids = [
        (await client.post("/v1/conversations", json={"user_id": "pager"})).json()["id"]
        for _ in range(7)
    ]
    await client.post("/v1/conversations", json={"user_id": "someone-else"})
    # Touch the oldest: it becomes the most recently updated.
    await client.patch(f"/v1/conversations/{ids[0]}", json={"title": "bumped"})
    expected = [ids[0], *reversed(ids[1:])]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"user_id": "pager", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/conversations", params=params)).json()
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3

    everyone = (await client.get("/v1/conversations", params={"limit": 100})).json()
    assert len(everyone["items"]) == 8
    assert everyone["next_cursor"] is None


async def test_list_rejects_bad_limits_and_cursors(client: Client) -> None:
    for limit in ("0", "1001", "-5", "ten", "99999999999999999999"):
        assert_problem(await client.get("/v1/conversations", params={"limit": limit}), 422, "limit")
    for cursor in ("zzz", "e30", "W10", "!!!!", "WzEsMiwzXQ"):
        response = await client.get("/v1/conversations", params={"cursor": cursor})
        assert_problem(response, 422, "cursor")


async def test_create_rejects_bad_input(client: Client) -> None:
    cases = [
        ({"title": 5}, "title"),
        ({"id": "not-a-uuid"}, "id"),
        ({"metadata": []}, "metadata"),
        ({"metadata": {"a": "x\u0000"}}, "metadata.a"),
        ({"title": "nul\u0000"}, "title"),
        ({"user_id": ""}, "user_id"),
        ({"unknown": 1}, "unknown"),
        ({"title": "x" * 1001}, "title"),
    ]
    for body, field in cases:
        assert_problem(await client.post("/v1/conversations", json=body), 422, field)
    huge = {"metadata": {"blob": "x" * (64 * 1024)}}
    assert_problem(await client.post("/v1/conversations", json=huge), 413, "metadata")
    malformed = await client.post(
        "/v1/conversations", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    assert_problem(malformed, 400, "body")


async def test_invalid_conversation_id_in_path_is_422(client: Client) -> None:
    for bad in ("nope", "1234", "../../etc/passwd"):
        response = await client.get(f"/v1/conversations/{bad}")
        assert response.status_code in (404, 422)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert_problem(await client.get("/v1/conversations/nope"), 422, "conversation_id")
