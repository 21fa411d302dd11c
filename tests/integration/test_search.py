"""Search (GET /v1/search): ranked hits with HTML-safe snippets, found by their words (stemmed),
by substrings in scripts without spaces and by exact identifiers; filtered; keyset-paged through
every hit exactly once; never another owner's message; every bad parameter a 422 naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from service.core import cursor
from service.core.search import MAX_QUERY_CHARS
from tests.helpers import assert_problem, bearer, messages_body, user_token
from tests.integration.conftest import Client

ALICE = bearer(user_token("alice"))
BOB = bearer(user_token("bob"))
VISITOR = {"X-Session-ID": "visitor-search-0123456789"}
LISTING_CURSOR = cursor.encode(*cursor.START)


async def conversation(
    client: Client,
    *contents: str,
    headers: dict[str, str] | None = None,
    role: str = "user",
    **body: Any,
) -> str:
    """A new conversation holding these messages (in order); its id."""
    created = await client.post("/v1/conversations", json=body, headers=headers or {})
    assert created.status_code == 201, created.text
    conversation_id: str = created.json()["id"]
    if contents:
        appended = await client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json=messages_body(*contents, role=role),
            headers=headers or {},
        )
        assert appended.status_code == 201, appended.text
    return conversation_id


async def search(
    client: Client, q: str, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    response = await client.get("/v1/search", params={"q": q, **params}, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def found(
    client: Client, q: str, headers: dict[str, str] | None = None, **params: Any
) -> list[tuple[str, int]]:
    """(conversation_id, seq) of the first page's hits, best first."""
    body = await search(client, q, headers, **params)
    return [(hit["conversation_id"], hit["seq"]) for hit in body["items"]]


async def test_words_match_in_any_form_and_the_literal_text_ranks_first(client: Client) -> None:
    c = await conversation(
        client,
        "The weather was fine all week.",
        "We talked about the invoices and their payments.",
        "Invoice payment received, thank you!",
        "The payment for the invoice is late.",
        title="Billing",
    )
    hits = (await search(client, "invoice payment"))["items"]
    assert [hit["seq"] for hit in hits[:1]] == [3]  # the exact phrase
    assert {hit["seq"] for hit in hits} == {2, 3, 4}  # stemmed words, any order
    assert [hit["rank"] for hit in hits] == sorted((hit["rank"] for hit in hits), reverse=True)
    first = hits[0]
    assert first["conversation_id"] == c
    assert first["conversation_title"] == "Billing"
    assert first["role"] == "user"
    assert first["topic"] is None
    assert first["message_id"]
    datetime.fromisoformat(first["created_at"])
    # Web-search syntax: a word excluded.
    assert {seq for _, seq in await found(client, "invoice -late")} == {2, 3}
    assert await found(client, "weather") == [(c, 1)]
    assert await found(client, "nothing-like-this") == []


async def test_snippets_mark_matches_and_escape_everything_else(client: Client) -> None:
    await conversation(
        client,
        "<script>alert('x')</script> & the Invoice \ue000 is <b>due</b>; invoice again",
        "Long text " + "filler words here " * 40 + "the quarterly invoicing report " + "end " * 40,
    )
    hits = (await search(client, "invoice"))["items"]
    by_seq = {hit["seq"]: hit["snippet"] for hit in hits}
    literal = by_seq[1]
    assert "<script" not in literal
    assert "<b>" not in literal
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; the " in literal
    assert "<mark>Invoice</mark>" in literal
    assert "<mark>invoice</mark> again" in literal
    # A private-use character of the content is no marker.
    assert literal.count("<mark>") == 2
    # Only stemmed words match in the second: ts_headline's fragment, around them, marked.
    stemmed = by_seq[2]
    assert "<mark>invoicing</mark>" in stemmed
    assert len(stemmed) < 400
    assert stemmed.replace("<mark>", "").replace("</mark>", "") in (
        "Long text " + "filler words here " * 40 + "the quarterly invoicing report " + "end " * 40
    )


async def test_japanese_and_chinese_substrings(client: Client) -> None:
    c = await conversation(
        client,
        "請求書について確認してください。",
        "注文の配送状況を教えてください",
        "请帮我查一下发票的状态",
        "数据库连接超时了",
    )
    assert await found(client, "請求書") == [(c, 1)]
    assert await found(client, "配送") == [(c, 2)]
    assert await found(client, "发票") == [(c, 3)]
    assert await found(client, "连接超时") == [(c, 4)]
    assert await found(client, "ください") == [(c, 2), (c, 1)]  # equal rank: newest first
    hit = (await search(client, "請求書"))["items"][0]
    assert hit["snippet"] == "<mark>請求書</mark>について確認してください。"


async def test_exact_identifiers(client: Client) -> None:
    c = await conversation(
        client,
        "Order ORD-2024-00042 failed with E1234 at checkout.",
        "Order ORD-2024-00043 shipped.",
        "Error e1234 again",
        "Totally unrelated: 2024 was a year.",
    )
    assert await found(client, "ORD-2024-00042") == [(c, 1)]
    assert await found(client, "ord-2024-00043") == [(c, 2)]
    assert set(await found(client, "E1234")) == {(c, 1), (c, 3)}
    assert await found(client, "ORD-2024-00044") == []
    assert await found(client, "00042") == [(c, 1)]  # part of an identifier
    hit = (await search(client, "ORD-2024-00042"))["items"][0]
    assert "<mark>ORD-2024-00042</mark>" in hit["snippet"]
    # LIKE's wildcards are taken literally.
    assert await found(client, "ORD%00042") == []
    assert await found(client, "E_234") == []


async def test_filters(client: Client, db: psycopg.Connection) -> None:
    first = await conversation(client, "apple pie recipe", external_id="recipes")
    second = await conversation(client, "apple orchard trip", role="assistant")
    topical = await client.post(
        f"/v1/conversations/{second}/messages",
        json=messages_body("apple harvest notes", topic="farm"),
    )
    assert topical.status_code == 201, topical.text
    past = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    db.execute("UPDATE messages SET created_at = %s WHERE conversation_id = %s", (past, first))
    everything = set(await found(client, "apple"))
    assert everything == {(first, 1), (second, 1), (second, 2)}
    assert await found(client, "apple", conversation_id=first) == [(first, 1)]
    assert await found(client, "apple", conversation_id="ext:recipes") == [(first, 1)]
    assert await found(client, "apple", role="assistant") == [(second, 1)]
    assert await found(client, "apple", topic="farm") == [(second, 2)]
    assert await found(client, "apple", until="2024-03-01T09:00:01Z") == [(first, 1)]
    after = (past + timedelta(seconds=1)).isoformat()
    assert set(await found(client, "apple", since=after)) == {(second, 1), (second, 2)}
    assert await found(client, "apple", since="2024-03-01T09:00:00+00:00", until=after) == [
        (first, 1)
    ]
    assert await found(client, "apple", user_id="nobody") == []


async def test_paging_walks_every_hit_once_in_rank_order(client: Client) -> None:
    # Ranks tie (same text), some differ (longer texts rank lower), two conversations.
    one = await conversation(client, *[f"needle number {n}" for n in range(13)])
    two = await conversation(
        client, *[f"needle {'hay ' * (n % 4)}number {n}" for n in range(12)], "no match here"
    )
    expected = {(one, seq) for seq in range(1, 14)} | {(two, seq) for seq in range(1, 13)}
    seen: list[tuple[str, int]] = []
    ranks: list[float] = []
    cursor = None
    pages = 0
    while True:
        body = await search(client, "needle", limit=4, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen += [(hit["conversation_id"], hit["seq"]) for hit in body["items"]]
        ranks += [hit["rank"] for hit in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 7
    assert len(seen) == len(set(seen)) == 25
    assert set(seen) == expected
    assert ranks == sorted(ranks, reverse=True)
    whole = await search(client, "needle", limit=100)
    assert [(hit["conversation_id"], hit["seq"]) for hit in whole["items"]] == seen
    assert whole["next_cursor"] is None


async def test_nobody_finds_anothers_messages(anonymous_client: Client, api_key: str) -> None:
    key = bearer(api_key)
    alices = await conversation(anonymous_client, "secret plan A", headers=ALICE)
    bobs = await conversation(anonymous_client, "secret plan B", headers=BOB)
    visitors = await conversation(anonymous_client, "secret plan V", headers=VISITOR)
    keys = await conversation(anonymous_client, "secret plan K", headers=key)

    assert await found(anonymous_client, "secret", ALICE) == [(alices, 1)]
    assert await found(anonymous_client, "secret", BOB) == [(bobs, 1)]
    assert await found(anonymous_client, "secret", VISITOR) == [(visitors, 1)]
    assert await found(anonymous_client, "secret", ALICE, user_id="alice") == [(alices, 1)]
    assert {c for c, _ in await found(anonymous_client, "secret", key)} == {
        alices,
        bobs,
        visitors,
        keys,
    }
    assert await found(anonymous_client, "secret", key, user_id="bob") == [(bobs, 1)]
    # Asking for someone else's: refused, or (a conversation) as missing as a made-up one.
    for headers in (ALICE, VISITOR):
        refused = await anonymous_client.get(
            "/v1/search", params={"q": "secret", "user_id": "bob"}, headers=headers
        )
        assert_problem(refused, 403, "user_id")
        hidden = await anonymous_client.get(
            "/v1/search", params={"q": "secret", "conversation_id": bobs}, headers=headers
        )
        assert_problem(hidden, 404, "conversation_id")
    nobody = await anonymous_client.get("/v1/search", params={"q": "secret"})
    assert_problem(nobody, 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * (MAX_QUERY_CHARS + 1)}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"q": "a", "since": "yesterday"}, "since"),
        ({"q": "a", "since": "2024-03-01T09:00:00"}, "since"),
        ({"q": "a", "until": "1700000000"}, "until"),
        ({"q": "a", "since": "2024-03-02T00:00:00Z", "until": "2024-03-01T00:00:00Z"}, "until"),
        ({"q": "a", "cursor": "not-a-cursor"}, "cursor"),
        # A listing's cursor is not a search's.
        ({"q": "a", "cursor": LISTING_CURSOR}, "cursor"),
        ({"q": "a", "limit": "0"}, "limit"),
        ({"q": "a", "limit": "1001"}, "limit"),
        ({"q": "a", "limit": "many"}, "limit"),
        ({"q": "a", "role": "Not A Role"}, "role"),
        ({"q": "a", "topic": "x\x00"}, "topic"),
        ({"q": "a", "conversation_id": "nope"}, "conversation_id"),
        ({"q": "a", "user_id": "x\x00"}, "user_id"),
    ],
)
async def test_bad_input_is_a_422_naming_the_parameter(
    client: Client, params: dict[str, str], field: str
) -> None:
    assert_problem(await client.get("/v1/search", params=params), 422, field)


async def test_an_unknown_conversation_is_a_404(client: Client) -> None:
    missing = await client.get(
        "/v1/search",
        params={"q": "a", "conversation_id": "00000000-0000-4000-8000-000000000000"},
    )
    assert_problem(missing, 404, "conversation_id")
    assert_problem(
        await client.get("/v1/search", params={"q": "a", "conversation_id": "ext:none"}),
        404,
        "conversation_id",
    )
