"""GET /v1/users/{user_id}/export: a user's history as the NDJSON of `chatkeep export --user`,
streamed (what the operator console downloads)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from service.core.principal import Permission
from service.transfer import export
from tests.helpers import assert_problem, bearer, create_key, messages_body, user_token
from tests.integration.conftest import Client


async def store(client: Client, user: str, *contents: str) -> str:
    conversation_id = str(uuid.uuid4())
    response = await client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"user_id": user, **messages_body(*contents)},
    )
    assert response.status_code == 201, response.text
    return conversation_id


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines()]


async def test_a_users_export_holds_their_history_and_nothing_else(client: Client) -> None:
    mine = await store(client, "ada", "one", "two")
    await store(client, "bob", "not ada's")
    response = await client.get("/v1/users/ada/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["cache-control"] == "no-store"
    assert 'filename="chatkeep-export-ada.ndjson"' in response.headers["content-disposition"]
    exported = lines(response.content)
    assert exported[0]["type"] == "header"
    assert exported[0]["user_id"] == "ada"
    assert [line["id"] for line in exported if line["type"] == "conversation"] == [mine]
    assert [line["content"] for line in exported if line["type"] == "message"] == ["one", "two"]
    assert exported[-1] == {
        "type": "end",
        "conversations": 1,
        "messages": 2,
        "prompt_versions": 0,
        "files": 0,
    }


async def test_a_user_without_history_exports_an_empty_file(client: Client) -> None:
    exported = lines((await client.get("/v1/users/nobody/export")).content)
    assert [line["type"] for line in exported] == ["header", "end"]


async def test_the_export_is_read_in_chunks_of_about_flush_bytes(
    client: Client, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the response streams: never more than one line past FLUSH_BYTES held at once."""
    monkeypatch.setattr(export, "FLUSH_BYTES", 1024)
    await store(client, "ada", *[f"message {n} " + "x" * 100 for n in range(40)])
    conn = await asyncpg.connect(database_url)
    try:
        end = export.new_end()
        chunks = [
            chunk async for chunk in export.chunks(conn, end, user_id="ada", conversation_id=None)
        ]
    finally:
        await conn.close()
    assert len(chunks) > 3
    assert max(map(len, chunks)) < 1024 + 1024
    assert lines(b"".join(chunks))[-1]["messages"] == end.messages == 40


async def test_the_user_may_export_their_own_history(
    anonymous_client: Client, client: Client
) -> None:
    await store(client, "ada", "mine")
    own = await anonymous_client.get("/v1/users/ada/export", headers=bearer(user_token("ada")))
    assert own.status_code == 200
    assert lines(own.content)[-1]["messages"] == 1
    other = await anonymous_client.get("/v1/users/ada/export", headers=bearer(user_token("bob")))
    assert_problem(other, 403, "user_id")


async def test_a_key_needs_read(anonymous_client: Client, database_url: str) -> None:
    write_only = await create_key(database_url, [Permission.WRITE])
    response = await anonymous_client.get("/v1/users/ada/export", headers=bearer(write_only))
    assert_problem(response, 403)
    assert_problem(await anonymous_client.get("/v1/users/ada/export"), 401)


async def test_an_odd_user_id_makes_a_plain_file_name(client: Client) -> None:
    response = await client.get("/v1/users/a%0d%0ab%22c/export")
    assert response.status_code == 200
    assert 'filename="chatkeep-export-a__b_c.ndjson"' in response.headers["content-disposition"]
    assert lines(response.content)[0]["user_id"] == 'a\r\nb"c'
    assert_problem(await client.get("/v1/users/a%00b/export"), 422, "user_id")
