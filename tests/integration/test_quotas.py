"""Quotas: what one user or one anonymous visitor may own (conversations, and bytes of message
content, metadata and files), refused with a 413 naming the setting, nothing stored; the counts
follow every write, and hold under concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from service.core.settings import Settings
from tests.helpers import JWT_SECRET, assert_problem, bearer, messages_body, user_token
from tests.integration.conftest import Client, make_settings
from tests.integration.test_migrations import apply_first
from tests.live import live_service

ALICE = bearer(user_token("alice"))
VISITOR = {"X-Session-ID": "visitor-quota-0123456789"}
MAX_CONVERSATIONS = 3
MAX_BYTES = 1000
# A message of this content and no metadata takes 302 bytes ({} is 2): three fit in MAX_BYTES.
CONTENT = "x" * 300
QUOTAS = {
    f"{owner}_max_{what}": str(limit)
    for owner in ("user", "visitor")
    for what, limit in (("conversations", MAX_CONVERSATIONS), ("bytes", MAX_BYTES))
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, jwt_secret=JWT_SECRET, allow_anonymous="true", **QUOTAS)


def usage(db: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """owner -> (conversations, bytes), after checking the stored counts against a recount of
    the tables."""
    counted = db.execute(
        "SELECT owner, conversations, bytes FROM owner_usage ORDER BY owner"
    ).fetchall()
    recounted = db.execute(
        """
        WITH per_conversation AS (
            SELECT c.id, usage_owner(c.user_id, c.visitor_hash) AS owner, c.bytes,
                   coalesce((SELECT sum(message_bytes(m.content, m.metadata)) FROM messages m
                             WHERE m.conversation_id = c.id), 0)
                   + coalesce((SELECT sum(f.size) FROM files f
                               WHERE f.conversation_id = c.id), 0) AS recounted
            FROM conversations c
        )
        SELECT owner, count(*), sum(recounted)
        FROM per_conversation WHERE owner IS NOT NULL GROUP BY owner ORDER BY owner
        """
    ).fetchall()
    assert counted == recounted
    drift = db.execute(
        "SELECT count(*) FROM conversations c WHERE c.bytes <> "
        "coalesce((SELECT sum(message_bytes(m.content, m.metadata)) FROM messages m "
        "WHERE m.conversation_id = c.id), 0) + coalesce((SELECT sum(f.size) FROM files f "
        "WHERE f.conversation_id = c.id), 0)"
    ).fetchone()
    assert drift == (0,)
    return {owner: (conversations, total) for owner, conversations, total in counted}


def alice(db: psycopg.Connection) -> tuple[int, int] | None:
    return usage(db).get("user:alice")


async def create(client: Client, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/conversations", json=body, headers=headers)


async def append(
    client: Client | httpx.AsyncClient,
    conversation_id: str,
    headers: dict[str, str],
    *contents: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json=messages_body(*contents),
        headers=headers,
    )


@pytest.mark.parametrize(
    ("headers", "setting"),
    [(ALICE, "CHATKEEP_USER_MAX_CONVERSATIONS"), (VISITOR, "CHATKEEP_VISITOR_MAX_CONVERSATIONS")],
)
async def test_a_conversation_past_the_count_is_a_413_naming_the_setting(
    anonymous_client: Client, db: psycopg.Connection, headers: dict[str, str], setting: str
) -> None:
    for _ in range(MAX_CONVERSATIONS):
        assert (await create(anonymous_client, headers)).status_code == 201
    before = usage(db)
    problem = assert_problem(await create(anonymous_client, headers, id=str(uuid.uuid4())), 413)
    assert setting in problem["detail"]
    # Appending to a new id would create one too.
    refused = await append(anonymous_client, str(uuid.uuid4()), headers, "hello")
    assert setting in assert_problem(refused, 413)["detail"]
    assert usage(db) == before
    assert db.execute("SELECT count(*) FROM conversations").fetchone() == (MAX_CONVERSATIONS,)


async def test_an_api_key_writing_for_a_user_counts_against_the_user_and_keys_are_free(
    client: Client, db: psycopg.Connection
) -> None:
    for _ in range(MAX_CONVERSATIONS):
        assert (await create(client, {}, user_id="alice")).status_code == 201
    refused = await create(client, {}, user_id="alice")
    assert "CHATKEEP_USER_MAX_CONVERSATIONS" in assert_problem(refused, 413)["detail"]
    # Conversations of no user or visitor are not limited.
    for _ in range(MAX_CONVERSATIONS + 1):
        assert (await create(client, {})).status_code == 201
    assert alice(db) == (MAX_CONVERSATIONS, 0)


@pytest.mark.parametrize(
    ("headers", "setting"),
    [(ALICE, "CHATKEEP_USER_MAX_BYTES"), (VISITOR, "CHATKEEP_VISITOR_MAX_BYTES")],
)
async def test_messages_past_the_byte_quota_are_a_413_and_store_nothing(
    anonymous_client: Client, db: psycopg.Connection, headers: dict[str, str], setting: str
) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert (await append(anonymous_client, first, headers, CONTENT, CONTENT)).status_code == 201
    assert (await append(anonymous_client, second, headers, CONTENT)).status_code == 201
    before = usage(db)
    assert list(before.values()) == [(2, 3 * 302)]
    # One byte over: the whole batch is refused, in either conversation or a new one.
    for conversation_id in (first, second, str(uuid.uuid4())):
        refused = await append(anonymous_client, conversation_id, headers, "y" * 93)
        assert setting in assert_problem(refused, 413)["detail"]
    assert usage(db) == before
    assert db.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    # Exactly up to the quota passes.
    assert (await append(anonymous_client, second, headers, "y" * 92)).status_code == 201
    assert list(usage(db).values()) == [(2, MAX_BYTES)]


@pytest.mark.parametrize(
    ("headers", "setting"),
    [(ALICE, "CHATKEEP_USER_MAX_BYTES"), (VISITOR, "CHATKEEP_VISITOR_MAX_BYTES")],
)
async def test_files_past_the_byte_quota_are_a_413_and_store_nothing(
    anonymous_client: Client, db: psycopg.Connection, headers: dict[str, str], setting: str
) -> None:
    conversation_id = (await create(anonymous_client, headers)).json()["id"]
    files_url = f"/v1/conversations/{conversation_id}/files"
    stored = await anonymous_client.post(
        files_url, params={"filename": "a.bin"}, content=b"a" * 600, headers=headers
    )
    assert stored.status_code == 201, stored.text
    refused = await anonymous_client.post(
        files_url, params={"filename": "b.bin"}, content=b"b" * 401, headers=headers
    )
    assert setting in assert_problem(refused, 413)["detail"]
    assert db.execute("SELECT count(*), sum(size) FROM files").fetchone() == (1, 600)
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (1,)
    assert list(usage(db).values()) == [(1, 600)]
    # Messages and files share the quota.
    assert (
        setting
        in assert_problem(await append(anonymous_client, conversation_id, headers, "z" * 399), 413)[
            "detail"
        ]
    )
    deleted = await anonymous_client.delete(f"{files_url}/{stored.json()['id']}", headers=headers)
    assert deleted.status_code == 204
    assert list(usage(db).values()) == [(1, 0)]


async def test_a_patch_may_not_grow_past_the_quota_but_may_shrink(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    conversation_id = str(uuid.uuid4())
    appended = await append(anonymous_client, conversation_id, ALICE, CONTENT, CONTENT, CONTENT)
    message_url = (
        f"/v1/conversations/{conversation_id}/messages/{appended.json()['items'][0]['id']}"
    )
    assert alice(db) == (1, 906)
    grown = await anonymous_client.patch(
        message_url, json={"content": CONTENT + "y" * 95}, headers=ALICE
    )
    assert "CHATKEEP_USER_MAX_BYTES" in assert_problem(grown, 413)["detail"]
    assert db.execute("SELECT content FROM messages WHERE seq = 1").fetchone() == (CONTENT,)
    grown = await anonymous_client.patch(
        message_url, json={"metadata": {"k": "v" * 100}}, headers=ALICE
    )
    assert_problem(grown, 413)
    within = await anonymous_client.patch(
        message_url, json={"content": CONTENT + "y" * 94}, headers=ALICE
    )
    assert within.status_code == 200, within.text
    assert alice(db) == (1, MAX_BYTES)
    shrunk = await anonymous_client.patch(message_url, json={"content": "short"}, headers=ALICE)
    assert shrunk.status_code == 200
    assert alice(db) == (1, 2 * 302 + 7)


async def test_usage_follows_deletes_clears_and_erasure(
    client: Client, db: psycopg.Connection
) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    body = {"user_id": "alice", **messages_body("a" * 10, "b" * 20)}
    body["messages"][1]["topic"] = "t"
    body["messages"][1]["metadata"] = {"n": 1}
    assert (await client.post(f"/v1/conversations/{first}/messages", json=body)).status_code == 201
    assert (await client.post(f"/v1/conversations/{second}/messages", json=body)).status_code == 201
    await client.post(
        f"/v1/conversations/{second}/files", params={"filename": "f"}, content=b"f" * 100
    )
    # 10 + 2, 20 + 8 ({"n": 1}) per conversation, and the file.
    assert alice(db) == (2, 2 * 40 + 100)
    listed = (await client.get(f"/v1/conversations/{first}/messages")).json()["items"]
    deleted = await client.delete(f"/v1/conversations/{first}/messages/{listed[0]['id']}")
    assert deleted.status_code == 204
    assert alice(db) == (2, 28 + 40 + 100)
    cleared = await client.delete(f"/v1/conversations/{second}/messages", params={"topic": "t"})
    assert cleared.json() == {"deleted": 1}
    assert alice(db) == (2, 28 + 12 + 100)
    assert (await client.delete(f"/v1/conversations/{first}")).status_code == 204
    assert alice(db) == (1, 12 + 100)
    assert (await client.delete("/v1/users/alice")).status_code == 200
    # Erased: no row keeps the user id.
    assert usage(db) == {}


async def test_a_claim_moves_usage_even_past_the_quota_and_further_writes_are_refused(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    for _ in range(2):
        assert (
            await append(anonymous_client, str(uuid.uuid4()), ALICE, CONTENT)
        ).status_code == 201
    visited = [str(uuid.uuid4()), str(uuid.uuid4())]
    for conversation_id in visited:
        assert (
            await append(anonymous_client, conversation_id, VISITOR, CONTENT)
        ).status_code == 201
    claimed = await anonymous_client.post(
        "/v1/users/alice/claim", json={"session_id": VISITOR["X-Session-ID"]}, headers=ALICE
    )
    # Refusing would strand the history of a visitor who just logged in: it moves.
    assert claimed.json() == {"claimed": 2}
    assert usage(db) == {"user:alice": (4, 4 * 302)}
    refused = await create(anonymous_client, ALICE)
    assert "CHATKEEP_USER_MAX_CONVERSATIONS" in assert_problem(refused, 413)["detail"]
    refused = await append(anonymous_client, visited[0], ALICE, "more")
    assert "CHATKEEP_USER_MAX_BYTES" in assert_problem(refused, 413)["detail"]
    # Making room works, and then writing does again.
    for conversation_id in visited:
        deleted = await anonymous_client.delete(
            f"/v1/conversations/{conversation_id}", headers=ALICE
        )
        assert deleted.status_code == 204
    assert (await create(anonymous_client, ALICE)).status_code == 201
    assert usage(db) == {"user:alice": (3, 2 * 302)}


async def test_concurrent_writes_of_one_user_cannot_pass_the_quota_together(
    database_url: str, db: psycopg.Connection
) -> None:
    """Appends to different conversations (no shared conversation lock) and creations, sent
    at once to a real server: exactly as many pass as the quota holds."""
    with live_service(
        database_url,
        jwt_secret=JWT_SECRET,
        user_max_bytes=str(MAX_BYTES),
        user_max_conversations="12",
    ) as (base, _):
        async with httpx.AsyncClient(base_url=base, headers=ALICE, timeout=60) as live:
            conversations = []
            for _ in range(10):
                created = await live.post("/v1/conversations", json={})
                assert created.status_code == 201, created.text
                conversations.append(created.json()["id"])
            appends = await asyncio.gather(
                *(append(live, conversation_id, {}, CONTENT) for conversation_id in conversations)
            )
            creations = await asyncio.gather(
                *(live.post("/v1/conversations", json={}) for _ in range(10))
            )
    assert sorted(response.status_code for response in appends) == [201] * 3 + [413] * 7
    assert sorted(response.status_code for response in creations) == [201] * 2 + [413] * 8
    assert alice(db) == (12, 3 * 302)


async def test_one_owners_uploads_and_deletes_of_shared_content_do_not_deadlock(
    database_url: str, db: psycopg.Connection
) -> None:
    """Uploads lock the conversation, the content, then the owner's usage; deletes must take
    them in that order too, or two conversations of one user sharing content deadlock."""
    content = b"shared" * 10_000
    with live_service(database_url, jwt_secret=JWT_SECRET) as (base, _):
        async with httpx.AsyncClient(base_url=base, headers=ALICE, timeout=60) as live:

            async def churn(conversation_id: str) -> None:
                files_url = f"/v1/conversations/{conversation_id}/files"
                for _ in range(10):
                    stored = await live.post(files_url, params={"filename": "s"}, content=content)
                    assert stored.status_code == 201, stored.text
                    deleted = await live.delete(f"{files_url}/{stored.json()['id']}")
                    assert deleted.status_code == 204, deleted.text

            conversations = [
                (await live.post("/v1/conversations", json={})).json()["id"] for _ in range(2)
            ]
            await asyncio.gather(*(churn(conversations[n % 2]) for n in range(6)))
    assert alice(db) == (2, 0)


def test_bulk_copy_as_the_importers_do_is_counted(db: psycopg.Connection) -> None:
    conversation_id = uuid.uuid4()
    with db.cursor().copy("COPY conversations (id, user_id) FROM STDIN") as copy:
        copy.write_row((conversation_id, "carol"))
    columns = "conversation_id, seq, id, role, content, metadata"
    with db.cursor().copy(f"COPY messages ({columns}) FROM STDIN") as copy:
        for seq in range(1, 101):
            copy.write_row((conversation_id, seq, uuid.uuid4(), "user", "z" * 10, '{"a": 1}'))
    assert usage(db) == {"user:carol": (1, 100 * (10 + 8))}


def test_the_migration_counts_what_is_already_stored(empty_database_url: str) -> None:
    apply_first(empty_database_url, 6)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversations (id, user_id, visitor_hash) VALUES "
            "(gen_random_uuid(), 'dave', NULL), (gen_random_uuid(), 'dave', NULL), "
            "(gen_random_uuid(), NULL, sha256('v')), (gen_random_uuid(), NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO messages (conversation_id, seq, id, role, content) "
            "SELECT id, 1, gen_random_uuid(), 'user', 'hello' FROM conversations"
        )
        apply_first(empty_database_url, 7)
        assert usage(conn) == {
            "user:dave": (2, 2 * (5 + 2)),
            "visitor:" + hashlib.sha256(b"v").hexdigest(): (1, 5 + 2),
        }
