"""The context window: GET .../messages?max_tokens=N, and the token counts it sums (given on
append, else estimated), through the HTTP API against real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from service.cli import main
from service.db.pool import init_connection
from service.db.queries import queries
from tests.helpers import assert_problem, bearer, new_conversation, user_token
from tests.integration.conftest import Client


async def append(client: Client, url: str, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(url, json={"messages": list(messages)})
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def said(content: str, tokens: int | None = None, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": content} | ({} if tokens is None else {"tokens": tokens})


async def window(client: Client, url: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contents(body: dict[str, Any]) -> list[str]:
    return [item["content"] for item in body["items"]]


async def test_the_window_is_the_newest_messages_within_the_budget_oldest_first(
    client: Client,
) -> None:
    _, url = new_conversation()
    await append(client, url, said("a", 5), said("b", 10), said("c", 20))

    everything = await window(client, url, max_tokens=35)
    assert (contents(everything), everything["tokens"]) == (["a", "b", "c"], 35)
    assert (everything["truncated"], everything["next_cursor"]) == (False, None)

    one_short = await window(client, url, max_tokens=34)
    assert (contents(one_short), one_short["tokens"], one_short["truncated"]) == (
        ["b", "c"],
        30,
        True,
    )
    # next_cursor, as `before`, pages through what was left out: the newest of it first.
    assert one_short["next_cursor"] == 2
    older = await window(client, url, before=one_short["next_cursor"])
    assert contents(older) == ["a"]

    assert contents(await window(client, url, max_tokens=29)) == ["c"]


async def test_a_newest_message_over_the_budget_gives_an_empty_window_that_says_so(
    client: Client,
) -> None:
    _, url = new_conversation()
    await append(client, url, said("small", 1), said("huge", 100))
    body = await window(client, url, max_tokens=99)
    # Never cut, and never skipped for an older one that fits: the window is the newest run.
    assert body == {"items": [], "next_cursor": 3, "tokens": 0, "truncated": True}


async def test_an_empty_conversation_has_an_empty_window_and_a_missing_one_is_a_404(
    client: Client,
) -> None:
    created = await client.post("/v1/conversations", json={})
    url = f"/v1/conversations/{created.json()['id']}/messages"
    body = await window(client, url, max_tokens=10)
    assert body == {"items": [], "next_cursor": None, "tokens": 0, "truncated": False}
    _, missing = new_conversation()
    assert_problem(await client.get(missing, params={"max_tokens": 10}), 404, "conversation_id")


async def test_without_max_tokens_a_page_keeps_its_shape(client: Client) -> None:
    _, url = new_conversation()
    await append(client, url, said("hello", 3))
    body = await window(client, url)
    assert set(body) == {"items", "next_cursor"}
    assert body["items"][0]["tokens"] == 3


async def test_before_ends_the_window_below_a_seq(client: Client) -> None:
    _, url = new_conversation()
    await append(client, url, *(said(str(n), 1) for n in range(1, 7)))
    body = await window(client, url, max_tokens=2, before=5)
    assert (contents(body), body["next_cursor"]) == (["3", "4"], 3)


async def test_a_window_longer_than_the_first_scan_walks_on(client: Client) -> None:
    """The newest 51 come from one range scan, the rest one by one: the seam is invisible."""
    _, url = new_conversation()
    await append(client, url, *(said(str(n), 1) for n in range(1, 101)))
    await append(client, url, *(said(str(n), 1) for n in range(101, 121)))
    for budget in (50, 51, 52, 100):
        body = await window(client, url, max_tokens=budget)
        newest = [str(n) for n in range(121 - budget, 121)]
        assert (contents(body), body["tokens"]) == (newest, budget)
        assert (body["truncated"], body["next_cursor"]) == (True, 121 - budget)
    everything = await window(client, url, max_tokens=1000)
    assert (len(everything["items"]), everything["truncated"]) == (120, False)


async def test_system_messages_come_first_and_count_against_the_budget(client: Client) -> None:
    _, url = new_conversation()
    await append(
        client,
        url,
        said("be brief", 10, role="system"),
        said("u1", 5),
        said("a1", 5, role="assistant"),
        said("answer in French", 3, role="system"),
        said("u2", 7),
    )
    body = await window(client, url, max_tokens=25, include_system="true")
    # 13 tokens of system messages, then the newest that fit the 12 left.
    assert contents(body) == ["be brief", "answer in French", "a1", "u2"]
    assert (body["tokens"], body["truncated"], body["next_cursor"]) == (25, True, 3)

    # Without include_system, a system message is a message like any other.
    assert contents(await window(client, url, max_tokens=10)) == ["answer in French", "u2"]

    too_small = await client.get(url, params={"max_tokens": 12, "include_system": "true"})
    body = assert_problem(too_small, 422, "max_tokens")
    assert "13 tokens" in body["detail"]


async def test_a_named_prompt_heads_the_window_and_counts_against_the_budget(
    client: Client, anonymous_client: Client
) -> None:
    await client.put("/v1/prompts/helper", json={"content": "old"})
    put = await client.put("/v1/prompts/helper", json={"content": "You help. " * 4})
    assert put.status_code == 201
    _, url = new_conversation()
    await append(client, url, said("x", 10), said("y", 10))

    body = await window(client, url, max_tokens=25, prompt="helper")
    # "You help. " * 4 is 40 bytes: 10 tokens by the estimate.
    assert body["prompt"]["name"] == "helper"
    assert (body["prompt"]["version"], body["prompt"]["tokens"]) == (2, 10)
    assert body["prompt"]["content"] == "You help. " * 4
    assert (contents(body), body["tokens"], body["truncated"]) == (["y"], 20, True)

    assert_problem(await client.get(url, params={"max_tokens": 9, "prompt": "helper"}), 422)
    assert_problem(
        await client.get(url, params={"max_tokens": 50, "prompt": "nobody"}), 404, "prompt"
    )
    # Prompts are the deployment's: a user reads none, through a window or otherwise.
    token = bearer(user_token("alice"))
    mine = new_conversation()[1]
    await anonymous_client.post(mine, json={"messages": [said("hi")]}, headers=token)
    forbidden = await anonymous_client.get(
        mine, params={"max_tokens": 50, "prompt": "helper"}, headers=token
    )
    assert_problem(forbidden, 403, "prompt")


async def test_given_token_counts_are_kept_and_missing_ones_estimated(
    client: Client, db: psycopg.Connection
) -> None:
    _, url = new_conversation()
    stored = await append(
        client,
        url,
        said("twelve bytes", 40),
        said("twelve bytes"),
        said("こんにちは、世界"),
        said("日本語 and English"),
        said(""),
    )
    # ceil(UTF-8 bytes / 4), and one token per CJK character (punctuation included).
    assert [item["tokens"] for item in stored] == [40, 3, 8, 3 + 3, 0]
    assert db.execute("SELECT tokens FROM messages ORDER BY seq").fetchall() == [
        (40,),
        (3,),
        (8,),
        (6,),
        (0,),
    ]
    message_url = f"{url}/{stored[1]['id']}"
    # New content, no count: estimated again; a count given: kept; metadata only: unchanged.
    patched = await client.patch(message_url, json={"content": "x" * 41})
    assert patched.json()["tokens"] == 11
    patched = await client.patch(message_url, json={"content": "y", "tokens": 7})
    assert patched.json()["tokens"] == 7
    patched = await client.patch(message_url, json={"metadata": {"k": 1}})
    assert patched.json()["tokens"] == 7
    # A retry without a count matches the estimate stored; another count is another body.
    retry = said("again")
    retry["id"] = str(uuid.uuid4())
    first = await append(client, url, retry)
    assert await append(client, url, retry) == first
    assert_problem(
        await client.post(url, json={"messages": [retry | {"tokens": 99}]}), 409, "messages[0].id"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2**31}, "max_tokens"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_tokens": 10, "limit": 5}, "limit"),
        ({"max_tokens": 10, "after": 1}, "after"),
        ({"max_tokens": 10, "topic": "t"}, "topic"),
        ({"max_tokens": 10, "order": "desc"}, "order"),
        ({"max_tokens": 10, "before": -1}, "before"),
        ({"include_system": "true"}, "max_tokens"),
        ({"prompt": "helper"}, "max_tokens"),
        ({"max_tokens": 10, "include_system": "maybe"}, "include_system"),
    ],
)
async def test_bad_window_parameters_are_422s_naming_them(
    client: Client, params: dict[str, Any], field: str
) -> None:
    _, url = new_conversation()
    await append(client, url, said("hi"))
    assert_problem(await client.get(url, params=params), 422, field)


@pytest.mark.parametrize("tokens", [-1, 2**31, 1.5, "many", [3]])
async def test_a_bad_token_count_is_a_422_naming_it(client: Client, tokens: Any) -> None:
    _, url = new_conversation()
    response = await client.post(
        url, json={"messages": [said("hi"), said("ho") | {"tokens": tokens}]}
    )
    assert_problem(response, 422, "messages[1].tokens")


async def messages_read(database_url: str, conversation_id: uuid.UUID, **params: Any) -> int:
    """How many message rows the window query reads from index and table, by EXPLAIN ANALYZE:
    the rows every scan of messages returned, over all its loops."""
    query = queries().registry["context.window"]
    arguments = {
        "conversation_id": conversation_id,
        "caller_trusted": True,
        "caller_user_id": None,
        "caller_visitor_hash": None,
        "before_seq": 2**63 - 1,
        "reserved_tokens": 0,
        "max_rows": 1000,
        "max_bytes": 4 * 1024 * 1024,
    } | params
    conn = await asyncpg.connect(database_url)
    try:
        await init_connection(conn)
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + query.sql, *query.arguments(arguments)
        )
    finally:
        await conn.close()

    def read(node: dict[str, Any]) -> int:
        own = 0
        if node.get("Relation Name") == "messages":
            own = node["Actual Rows"] * node["Actual Loops"]
        return own + sum(read(child) for child in node.get("Plans", []))

    # The pool's codecs may have decoded the JSON already.
    document = json.loads(plan) if isinstance(plan, str) else plan
    return read(document[0]["Plan"])


async def test_the_window_reads_as_many_rows_whatever_the_history_length(
    database_url: str, db: psycopg.Connection
) -> None:
    """Cost flat in history length, by rows examined (not by timing): 200 messages and 20,000
    give the same plan work for the same window, whether it fits the first range scan (51
    rows, as a page of 50 reads) or walks on beyond it (one probe per message)."""
    read: dict[int, dict[tuple[int, bool], int]] = {}
    for length in (200, 20_000):
        conversation_id = uuid.uuid4()
        db.execute(
            "INSERT INTO conversations (id, last_seq, message_count) VALUES (%s, %s, %s)",
            (conversation_id, length, length),
        )
        db.execute(
            "INSERT INTO messages (conversation_id, seq, id, role, content) "
            "SELECT %s, g, gen_random_uuid(), CASE WHEN g IN (1, %s / 2) THEN 'system' "
            "ELSE 'user' END, repeat('word', 5) FROM generate_series(1, %s) g",
            (conversation_id, length, length),
        )
        db.execute("ANALYZE messages")
        # Every message is 5 tokens.
        read[length] = {
            (budget, system): await messages_read(
                database_url, conversation_id, max_tokens=budget, include_system=system
            )
            for budget in (40, 500)
            for system in (False, True)
        }
    assert read[200] == read[20_000]
    # 8 messages fit 40 tokens: the scan's 51 rows hold them and the 9th.
    assert read[200][40, False] == 51
    # 100 fit 500: the scan's 51, then 49 probes and the 101st that does not fit.
    assert read[200][500, False] == 101
    # The two system messages (neither among the newest) come from their own index; the walk
    # skips them.
    assert read[200][40, True] == 2 + 51
    assert read[200][500, True] == 2 + 99


async def test_token_counts_travel_in_exports_and_older_exports_get_the_estimate(
    *,
    client: Client,
    database_url: str,
    db: psycopg.Connection,
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    conversation_id, url = new_conversation()
    await append(client, url, said("given", 42), said("estimated"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    dump = tmp_path / "dump.ndjson"
    assert await asyncio.to_thread(main, ["export", "--output", str(dump)]) == 0
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [line["tokens"] for line in lines if line["type"] == "message"] == [42, 3]

    # A version 3 export knows no token counts: the import estimates them.
    older = [
        {key: value for key, value in line.items() if key not in ("tokens", "expires_at")}
        | ({"version": 3} if line["type"] == "header" else {})
        for line in lines
    ]
    dump.write_text("".join(json.dumps(line) + "\n" for line in older))
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert await asyncio.to_thread(main, ["import", "ndjson", str(dump)]) == 0
    assert "all match" in capsys.readouterr().out
    with psycopg.connect(empty_database_url) as imported:
        assert imported.execute(
            "SELECT content, tokens FROM messages WHERE conversation_id = %s ORDER BY seq",
            (conversation_id,),
        ).fetchall() == [("given", 2), ("estimated", 3)]
