"""SQL injection strings in every text field and id: stored verbatim or refused, never executed."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import psycopg

from tests.helpers import assert_problem, bearer, user_token
from tests.integration.conftest import Client

PAYLOADS = [
    "'; DROP TABLE messages; --",
    "' OR '1'='1",
    '" OR 1=1 --',
    "1); DELETE FROM conversations; --",
    "$1::text || (SELECT string_agg(id::text, ',') FROM conversations)",
    "'||pg_sleep(10)||'",
    "../../etc/passwd",
]


def tables_intact(db: psycopg.Connection) -> tuple[int, int]:
    row = db.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


async def test_text_fields_store_injection_strings_verbatim(
    client: Client, db: psycopg.Connection
) -> None:
    for payload in PAYLOADS:
        created = await client.post(
            "/v1/conversations",
            json={"title": payload, "user_id": payload, "metadata": {payload: payload}},
        )
        assert created.status_code == 201, created.text
        conversation = created.json()
        assert (conversation["title"], conversation["user_id"]) == (payload, payload)
        assert conversation["metadata"] == {payload: payload}
        url = f"/v1/conversations/{conversation['id']}/messages"
        appended = await client.post(
            url,
            json={
                "messages": [
                    {
                        "role": "user",
                        "content": payload,
                        "topic": payload,
                        "metadata": {"q": payload},
                    }
                ]
            },
        )
        assert appended.status_code == 201, appended.text
        by_topic = await client.get(url, params={"topic": payload})
        assert [item["content"] for item in by_topic.json()["items"]] == [payload]
        listed = await client.get("/v1/conversations", params={"user_id": payload})
        assert [item["id"] for item in listed.json()["items"]] == [conversation["id"]]
        cleared = await client.delete(url, params={"topic": payload})
        assert cleared.json() == {"deleted": 1}
    assert tables_intact(db) == (len(PAYLOADS), 0)


async def test_ids_and_cursors_with_injection_strings_are_422(
    client: Client, db: psycopg.Connection
) -> None:
    conversation_id = str(uuid.uuid4())
    await client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"messages": [{"role": "user", "content": "x"}]},
    )
    for payload in PAYLOADS:
        quoted = quote(payload, safe="")
        for method, url, field in (
            ("GET", f"/v1/conversations/{quoted}", "conversation_id"),
            ("DELETE", f"/v1/conversations/{quoted}", "conversation_id"),
            ("GET", f"/v1/conversations/{conversation_id}/messages/{quoted}", "message_id"),
            ("GET", f"/v1/conversations?cursor={quoted}", "cursor"),
            ("GET", f"/v1/conversations/{conversation_id}/messages?before={quoted}", "before"),
        ):
            response = await client.request(method, url)
            assert response.status_code in (404, 422), (url, response.text)
            if response.status_code == 422:
                assert_problem(response, 422, field)
        appended = await client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json={"messages": [{"id": payload, "role": "user", "content": "x"}]},
        )
        assert_problem(appended, 422, "messages[0].id")
    assert tables_intact(db) == (1, 1)


async def test_identities_with_injection_strings_stay_data(
    anonymous_client: Client, api_key: str, db: psycopg.Connection
) -> None:
    for payload in PAYLOADS:
        as_user = bearer(user_token(payload))
        created = await anonymous_client.post("/v1/conversations", json={}, headers=as_user)
        assert created.json()["user_id"] == payload
        listed = await anonymous_client.get("/v1/conversations", headers=as_user)
        assert len(listed.json()["items"]) == 1
        visitor = await anonymous_client.get(
            "/v1/conversations", headers={"X-Session-ID": payload + "0123456789abcdef"}
        )
        assert_problem(visitor, 401, "X-Session-ID")
        quoted = quote(payload, safe="")
        claim = await anonymous_client.post(
            f"/v1/users/{quoted}/claim", json={"session_id": payload}, headers=bearer(api_key)
        )
        erased = await anonymous_client.delete(f"/v1/users/{quoted}", headers=bearer(api_key))
        if "/" in payload:  # the server decodes %2F, so the path names no user route
            assert_problem(claim, 404)
            assert_problem(erased, 404)
            continue
        assert_problem(claim, 422, "session_id")
        assert erased.json() == {"conversations": 1, "messages": 0}, payload
    assert tables_intact(db) == (1, 0)
