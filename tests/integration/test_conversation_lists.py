"""Finding conversations: the metadata filter (containment, never another owner's), both orders
keyset-paged, counts; bulk deletes by each filter, in batches, only with the erase permission;
every bad parameter a 422 naming it. The plans use the indexes meant for them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest

from service.core.principal import Permission
from service.core.settings import Settings
from service.db.pool import init_connection
from service.db.queries import queries
from tests.helpers import (
    JWT_SECRET,
    assert_problem,
    bearer,
    create_key,
    messages_body,
    user_token,
)
from tests.integration.conftest import Client, make_settings
from tests.integration.test_quotas import usage

ALICE = bearer(user_token("alice"))
BOB = bearer(user_token("bob"))
VISITOR = {"X-Session-ID": "visitor-lists-0123456789"}
# Small, so a few conversations take several batches.
BATCH = 3
BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        jwt_secret=JWT_SECRET,
        allow_anonymous="true",
        bulk_delete_batch=str(BATCH),
        max_metadata_bytes="1000",
    )


async def create(
    client: Client,
    *,
    headers: dict[str, str] | None = None,
    messages: int = 0,
    **body: Any,
) -> str:
    response = await client.post("/v1/conversations", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    if messages:
        contents = [f"message {n}" for n in range(messages)]
        appended = await client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json=messages_body(*contents),
            headers=headers or {},
        )
        assert appended.status_code == 201, appended.text
    return conversation_id


async def listed(client: Client, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    """The ids of every page of the listing, following next_cursor."""
    ids: list[str] = []
    cursor = None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/conversations", params=page_params, headers=headers or {})
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


async def count(client: Client, headers: dict[str, str] | None = None, **params: Any) -> int:
    response = await client.get("/v1/conversations/count", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    n: int = response.json()["count"]
    return n


def as_filter(value: dict[str, Any]) -> str:
    return json.dumps(value)


def remaining(db: psycopg.Connection) -> set[str]:
    return {str(row[0]) for row in db.execute("SELECT id FROM conversations").fetchall()}


# --- the metadata filter -------------------------------------------------------------------


async def test_metadata_filter_matches_by_containment(client: Client) -> None:
    open_f1 = await create(
        client,
        user_id="alice",
        metadata={"form_id": "f1", "state": {"status": "open", "step": 2}, "tags": ["a", "b"]},
    )
    done_f1 = await create(
        client, user_id="alice", metadata={"form_id": "f1", "state": {"status": "done"}}
    )
    f2 = await create(client, user_id="bob", metadata={"form_id": "f2", "tags": ["a"]})
    await create(client, user_id="bob", metadata={})

    assert set(await listed(client, metadata=as_filter({"form_id": "f1"}))) == {open_f1, done_f1}
    nested = as_filter({"form_id": "f1", "state": {"status": "open"}})
    assert await listed(client, metadata=nested) == [open_f1]
    assert set(await listed(client, metadata=as_filter({"tags": ["a"]}))) == {open_f1, f2}
    assert await listed(client, metadata=as_filter({"tags": ["a", "b"]})) == [open_f1]
    assert await listed(client, metadata=as_filter({"form_id": "f3"})) == []
    assert await listed(client, metadata=as_filter({"state": {"step": "2"}})) == []
    # With user_id too: both filters hold.
    assert await listed(client, user_id="bob", metadata=as_filter({"form_id": "f1"})) == []
    assert await listed(client, user_id="bob", metadata=as_filter({"form_id": "f2"})) == [f2]
    # {} is contained in every object: no filter at all.
    assert len(await listed(client, metadata="{}")) == 4
    assert await count(client, metadata=as_filter({"form_id": "f1"})) == 2
    assert await count(client, metadata=as_filter({"tags": ["a"]}), user_id="bob") == 1


async def test_users_and_visitors_never_find_anothers_conversations(
    anonymous_client: Client, api_key: str
) -> None:
    key = bearer(api_key)
    form = {"form_id": "shared"}
    alices = await create(anonymous_client, headers=ALICE, metadata=form)
    await create(anonymous_client, headers=BOB, metadata=form)
    visitors = await create(anonymous_client, headers=VISITOR, metadata=form)
    await create(anonymous_client, headers=key, metadata=form)  # an API key's, of no user

    for headers, own in ((ALICE, alices), (VISITOR, visitors)):
        assert await listed(anonymous_client, headers, metadata=as_filter(form)) == [own]
        assert await listed(anonymous_client, headers, sort="created_at") == [own]
        assert await count(anonymous_client, headers, metadata=as_filter(form)) == 1
        assert await count(anonymous_client, headers) == 1
    assert await listed(anonymous_client, ALICE, user_id="alice", metadata='{"x": 1}') == []
    refused = await anonymous_client.get(
        "/v1/conversations", params={"user_id": "bob", "metadata": as_filter(form)}, headers=ALICE
    )
    assert_problem(refused, 403, "user_id")
    refused = await anonymous_client.get(
        "/v1/conversations/count", params={"user_id": "alice"}, headers=VISITOR
    )
    assert_problem(refused, 403, "user_id")
    assert await count(anonymous_client, key, metadata=as_filter(form)) == 4


# --- both orders, paged ---------------------------------------------------------------------


async def test_both_orders_page_newest_first(client: Client, db: psycopg.Connection) -> None:
    ids = [await create(client, user_id="alice", metadata={"form_id": "f1"}) for _ in range(7)]
    await create(client, user_id="bob", metadata={"form_id": "f1"})
    # Creation order 0..6 (two sharing an instant: the id breaks the tie); updates in another.
    created = [BASE + timedelta(seconds=n) for n in (0, 1, 2, 3, 3, 5, 6)]
    updated = [BASE + timedelta(hours=1, seconds=n) for n in (4, 0, 6, 1, 5, 2, 3)]
    for conversation_id, at, last in zip(ids, created, updated, strict=True):
        db.execute(
            "UPDATE conversations SET created_at = %s, updated_at = %s WHERE id = %s",
            [at, last, conversation_id],
        )

    def newest_first(times: list[datetime]) -> list[str]:
        return [i for _, i in sorted(zip(times, ids, strict=True), reverse=True)]

    by_created, by_updated = newest_first(created), newest_first(updated)
    assert by_created != by_updated
    filters: list[dict[str, Any]] = [
        {"user_id": "alice"},
        {"user_id": "alice", "metadata": '{"form_id": "f1"}'},
    ]
    for params in filters:
        assert await listed(client, **params, limit=2) == by_updated
        assert await listed(client, **params, limit=2, sort="updated_at") == by_updated
        assert await listed(client, **params, limit=3, sort="created_at") == by_created
    assert await listed(client, ALICE, limit=2, sort="created_at") == by_created
    # All conversations (an API key), filtered or not: bob's, made just now, comes first.
    everyone = await listed(client, limit=2, sort="created_at", metadata='{"form_id": "f1"}')
    assert everyone[1:] == by_created
    assert len(everyone) == 8
    assert (await listed(client, limit=3, sort="created_at"))[1:] == by_created
    assert (await listed(client, limit=3))[1:] == by_updated


async def test_a_cursor_belongs_to_its_order(client: Client) -> None:
    for _ in range(3):
        await create(client)
    for sort, other in (("updated_at", "created_at"), ("created_at", "updated_at")):
        first = await client.get("/v1/conversations", params={"limit": 1, "sort": sort})
        cursor = first.json()["next_cursor"]
        same = await client.get(
            "/v1/conversations", params={"limit": 1, "sort": sort, "cursor": cursor}
        )
        assert same.status_code == 200
        mixed = await client.get(
            "/v1/conversations", params={"limit": 1, "sort": other, "cursor": cursor}
        )
        assert_problem(mixed, 422, "cursor")


# --- counts ---------------------------------------------------------------------------------


async def test_count_is_routed_before_the_conversation_id(
    anonymous_client: Client, api_key: str
) -> None:
    key = bearer(api_key)
    assert await count(anonymous_client, key) == 0
    for _ in range(3):
        await create(anonymous_client, headers=key, user_id="alice", metadata={"form_id": "f1"})
    await create(anonymous_client, headers=key, user_id="bob", metadata={"form_id": "f1"})
    await create(anonymous_client, headers=VISITOR)
    assert await count(anonymous_client, key) == 5
    assert await count(anonymous_client, key, user_id="alice") == 3
    assert await count(anonymous_client, key, metadata='{"form_id": "f1"}') == 4
    assert await count(anonymous_client, ALICE) == 3
    assert await count(anonymous_client, ALICE, metadata='{"form_id": "f2"}') == 0
    assert await count(anonymous_client, VISITOR) == 1


# --- bulk deletes ---------------------------------------------------------------------------


async def test_bulk_delete_by_user_in_batches_keeps_usage_true(
    client: Client, db: psycopg.Connection
) -> None:
    # More than three batches of BATCH for alice, with messages and a file.
    alices = [await create(client, user_id="alice", messages=2) for _ in range(3 * BATCH + 1)]
    upload = await client.post(
        f"/v1/conversations/{alices[0]}/files",
        params={"filename": "a.txt"},
        content=b"attached",
        headers={"Content-Type": "text/plain"},
    )
    assert upload.status_code == 201, upload.text
    bobs = {await create(client, user_id="bob", messages=1) for _ in range(2)}
    others = {await create(client, messages=1)}
    assert set(usage(db)) == {"user:alice", "user:bob"}

    response = await client.delete("/v1/conversations", params={"user_id": "alice"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "conversations": 3 * BATCH + 1,
        "messages": 6 * BATCH + 2,
        "files": 1,
    }
    assert remaining(db) == bobs | others
    # Triggers counted every batch: alice's usage row is gone, bob's is untouched.
    assert set(usage(db)) == {"user:bob"}
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)
    again = await client.delete("/v1/conversations", params={"user_id": "alice"})
    assert again.json() == {"conversations": 0, "messages": 0, "files": 0}


async def test_bulk_delete_by_metadata(client: Client, db: psycopg.Connection) -> None:
    doomed = {
        await create(client, user_id=f"u{n}", metadata={"form_id": "f1", "n": n})
        for n in range(2 * BATCH)
    }
    kept = {
        await create(client, user_id="u1", metadata={"form_id": "f2"}),
        await create(client, metadata={"form": {"form_id": "f1"}}),
    }
    response = await client.delete("/v1/conversations", params={"metadata": '{"form_id": "f1"}'})
    assert response.json()["conversations"] == len(doomed)
    assert remaining(db) == kept
    usage(db)


async def test_bulk_delete_by_last_update_and_by_every_filter(
    client: Client, db: psycopg.Connection
) -> None:
    old = [await create(client, user_id="alice", metadata={"k": n % 2}) for n in range(2 * BATCH)]
    recent = await create(client, user_id="alice", metadata={"k": 0})
    bobs_old = await create(client, user_id="bob", metadata={"k": 0})
    for conversation_id in [*old, bobs_old]:
        db.execute(
            "UPDATE conversations SET updated_at = %s WHERE id = %s", [BASE, conversation_id]
        )
    cutoff = (BASE + timedelta(days=1)).isoformat()

    all_three = {"updated_before": cutoff, "user_id": "alice", "metadata": '{"k": 0}'}
    response = await client.delete("/v1/conversations", params=all_three)
    assert response.json()["conversations"] == BATCH
    assert remaining(db) == {*old[1::2], recent, bobs_old}

    response = await client.delete("/v1/conversations", params={"updated_before": cutoff})
    assert response.json()["conversations"] == BATCH + 1
    assert remaining(db) == {recent}
    usage(db)


async def test_bulk_delete_without_a_filter_needs_confirmation(
    client: Client, db: psycopg.Connection
) -> None:
    for n in range(BATCH + 2):
        await create(client, user_id=f"u{n}", messages=1)
    for params in ({}, {"metadata": "{}"}):
        assert_problem(await client.delete("/v1/conversations", params=params), 422, "confirm")
    assert_problem(
        await client.delete("/v1/conversations", params={"confirm": "yes"}), 422, "confirm"
    )
    assert len(remaining(db)) == BATCH + 2
    response = await client.delete("/v1/conversations", params={"confirm": "all"})
    assert response.json() == {"conversations": BATCH + 2, "messages": BATCH + 2, "files": 0}
    assert remaining(db) == set()
    assert usage(db) == {}


async def test_bulk_delete_needs_a_key_with_erase(
    anonymous_client: Client, database_url: str, db: psycopg.Connection
) -> None:
    await create(anonymous_client, headers=ALICE)
    await create(anonymous_client, headers=VISITOR)
    without_erase = await create_key(database_url, [Permission.READ, Permission.WRITE])
    for headers, field in (
        (bearer(without_erase), "Authorization"),
        (ALICE, "Authorization"),
        (VISITOR, "Authorization"),
    ):
        for params in ({"user_id": "alice"}, {"confirm": "all"}):
            refused = await anonymous_client.delete(
                "/v1/conversations", params=params, headers=headers
            )
            assert_problem(refused, 403, field)
    assert len(remaining(db)) == 2


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metadata": "{not json"}, "metadata"),
        ({"metadata": '["form_id"]'}, "metadata"),
        ({"metadata": '"f1"'}, "metadata"),
        ({"metadata": "null"}, "metadata"),
        ({"metadata": '{"form_id": "f\\u0000"}'}, "metadata"),
        ({"metadata": '{"f\\u0000": 1}'}, "metadata.f\x00"),
        ({"metadata": '{"form_id": "\x00"}'}, "metadata"),
        ({"metadata": json.dumps({"x": "y" * 1000})}, "metadata"),
        ({"metadata": '{"a": ' * 40 + "1" + "}" * 40}, "metadata"),
        ({"user_id": "al\x00ice"}, "user_id"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "GET /count", "DELETE"])
async def test_bad_filters_are_422_naming_the_parameter(
    client: Client, params: dict[str, str], field: str, method: str
) -> None:
    verb, _, suffix = method.partition(" ")
    response = await client.request(verb, f"/v1/conversations{suffix}", params=params)
    body = assert_problem(response, 422)
    assert body["field"].startswith(field.split(".", maxsplit=1)[0]), body


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("GET", {"sort": "title"}, "sort"),
        ("GET", {"sort": "created_at", "cursor": "not a cursor"}, "cursor"),
        ("DELETE", {"updated_before": "yesterday"}, "updated_before"),
        ("DELETE", {"updated_before": "2024-03-01T09:00:00"}, "updated_before"),
        ("DELETE", {"updated_before": "1709283600"}, "updated_before"),
        ("DELETE", {"updated_before": "0.5"}, "updated_before"),
        ("DELETE", {"user_id": "alice", "confirm": "everything"}, "confirm"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    client: Client, method: str, params: dict[str, str], field: str
) -> None:
    response = await client.request(method, "/v1/conversations", params=params)
    assert_problem(response, 422, field)


async def test_openapi_documents_the_parameters(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    listing = {p["name"]: p for p in paths["/v1/conversations"]["get"]["parameters"]}
    assert listing["sort"]["schema"]["enum"] == ["updated_at", "created_at"]
    metadata = listing["metadata"]["content"]["application/json"]["schema"]
    assert metadata["type"] == "object"
    bulk = {p["name"] for p in paths["/v1/conversations"]["delete"]["parameters"]}
    assert bulk == {"user_id", "metadata", "updated_before", "confirm"}
    counting = {p["name"] for p in paths["/v1/conversations/count"]["get"]["parameters"]}
    assert counting == {"user_id", "metadata"}


# --- plans ----------------------------------------------------------------------------------


async def plan(database_url: str, key: str, mode: str, **params: Any) -> str:
    """The plan PostgreSQL runs a registered query with (mode: its plan_cache_mode), with
    sequential scans off: the question is whether an index can serve the query at all."""
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    try:
        query = queries().registry[key]
        await conn.execute(f"SET plan_cache_mode = {mode}; SET enable_seqscan = off")
        statement = await conn.prepare(f"EXPLAIN {query.sql}")
        rows = await statement.fetch(*query.arguments(params))
        return "\n".join(row[0] for row in rows)
    finally:
        await conn.close()


START = {"after_at": datetime(9999, 12, 31, tzinfo=UTC), "after_id": uuid.UUID(int=0)}


async def test_plans_use_the_indexes(database_url: str) -> None:
    # The hot path, a user's latest: a scan of conversations_user_recent even as a generic plan
    # (which a prepared statement settles on after a few calls).
    user = {**START, "user_id": "alice", "metadata": None, "max_rows": 51}
    for mode in ("force_custom_plan", "force_generic_plan"):
        assert "conversations_user_recent" in await plan(
            database_url, "conversation_lists.for_user_by_updated", mode, **user
        )
        assert "conversations_user_created" in await plan(
            database_url, "conversation_lists.for_user_by_created", mode, **user
        )
        assert "conversations_recent" in await plan(
            database_url,
            "conversation_lists.by_updated",
            mode,
            **START,
            caller_trusted=True,
            max_rows=51,
        )
        # Over all conversations, the metadata filter can use the GIN index in either plan.
        matching = {**START, "caller_trusted": True, "metadata": {"form_id": "f1"}}
        assert "conversations_metadata" in await plan(
            database_url, "conversation_lists.matching_by_created", mode, **matching, max_rows=51
        )
    assert "conversations_metadata" in await plan(
        database_url,
        "conversation_lists.count_matching",
        "force_generic_plan",
        caller_trusted=True,
        metadata={"form_id": "f1"},
    )
