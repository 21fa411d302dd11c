"""The applications' own ids: external_id on conversations (unique within the owner, addressable
as ext:{id} on every conversation endpoint, under the same access rules) and on messages (unique
within the conversation, safe to retry by)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import assert_problem, bearer, messages_body, user_token

Client = AsyncTestClient[Litestar]
ALICE = bearer(user_token("alice"))
BOB = bearer(user_token("bob"))
VISITOR = {"X-Session-ID": "visitor-a-0123456789abcdef"}
OTHER_VISITOR = {"X-Session-ID": "visitor-b-0123456789abcdef"}


async def test_create_with_an_external_id_and_use_it_everywhere(client: Client) -> None:
    created = await client.post(
        "/v1/conversations", json={"external_id": "session-42", "title": "Forms"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["external_id"] == "session-42"
    url = "/v1/conversations/ext:session-42"
    assert (await client.get(url)).json() == created.json()
    assert (await client.post(f"{url}/messages", json=messages_body("a", "b"))).status_code == 201
    page = (await client.get(f"{url}/messages")).json()
    assert [m["content"] for m in page["items"]] == ["a", "b"]
    assert page["items"][0]["conversation_id"] == created.json()["id"]
    message_id = page["items"][0]["id"]
    assert (await client.get(f"{url}/messages/{message_id}")).json()["content"] == "a"
    patched = await client.patch(f"{url}/messages/{message_id}", json={"content": "A"})
    assert patched.json()["content"] == "A"
    assert (await client.delete(f"{url}/messages/{message_id}")).status_code == 204
    assert (await client.delete(f"{url}/messages")).json() == {"deleted": 1}
    assert (await client.patch(url, json={"title": "renamed"})).json()["title"] == "renamed"
    assert (await client.delete(url)).status_code == 204
    assert_problem(await client.get(url), 404, "conversation_id")


async def test_a_duplicate_external_id_is_a_conflict_and_a_retry_is_not(client: Client) -> None:
    body = {"external_id": "s1", "user_id": "u1", "metadata": {"form": "f1"}}
    first = await client.post("/v1/conversations", json=body)
    retry = await client.post("/v1/conversations", json=body)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()
    other_body = await client.post("/v1/conversations", json={**body, "title": "another"})
    assert_problem(other_body, 409, "external_id")
    with_new_id = await client.post("/v1/conversations", json={**body, "id": str(uuid.uuid4())})
    assert_problem(with_new_id, 409, "external_id")
    # Unique within the owner: another user may use the same external id.
    elsewhere = await client.post("/v1/conversations", json={**body, "user_id": "u2"})
    assert elsewhere.status_code == 201


async def test_an_append_to_a_new_external_id_creates_the_conversation_once(
    client: Client, db: psycopg.Connection
) -> None:
    url = "/v1/conversations/ext:chat-7/messages"
    responses = await asyncio.gather(
        *(client.post(url, json={**messages_body(f"m{n}"), "user_id": "u1"}) for n in range(5))
    )
    assert all(response.status_code == 201 for response in responses)
    rows = db.execute(
        "SELECT user_id, message_count FROM conversations WHERE external_id = 'chat-7'"
    ).fetchall()
    assert rows == [("u1", 5)]


async def test_external_ids_follow_the_access_rules(anonymous_client: Client) -> None:
    client = anonymous_client
    url = "/v1/conversations/ext:shared-name"
    for who in (ALICE, BOB, VISITOR, OTHER_VISITOR):
        created = await client.post(f"{url}/messages", json=messages_body("mine"), headers=who)
        assert created.status_code == 201, created.text
    alice = (await client.get(url, headers=ALICE)).json()
    bob = (await client.get(url, headers=BOB)).json()
    visitor = (await client.get(url, headers=VISITOR)).json()
    assert len({alice["id"], bob["id"], visitor["id"]}) == 3
    assert (alice["user_id"], bob["user_id"], visitor["user_id"]) == ("alice", "bob", None)
    # Alice's conversation is not Bob's to read by its UUID either.
    assert_problem(await client.get(f"/v1/conversations/{alice['id']}", headers=BOB), 404)


async def test_a_key_naming_an_ambiguous_external_id_is_told_to_disambiguate(
    client: Client,
) -> None:
    for user in ("u1", "u2"):
        await client.post("/v1/conversations", json={"external_id": "dup", "user_id": user})
    assert_problem(await client.get("/v1/conversations/ext:dup"), 409, "conversation_id")
    # An append naming its user picks that user's.
    appended = await client.post(
        "/v1/conversations/ext:dup/messages", json={**messages_body("x"), "user_id": "u2"}
    )
    assert appended.status_code == 201


async def test_bad_conversation_names_are_refused_naming_the_field(client: Client) -> None:
    for name in ("not-a-uuid", "ext:", "ext:" + "x" * 256):
        assert_problem(await client.get(f"/v1/conversations/{name}"), 422, "conversation_id")
    too_long = await client.post("/v1/conversations", json={"external_id": "x" * 256})
    assert_problem(too_long, 422, "external_id")
    nul = await client.post("/v1/conversations", json={"external_id": "a\u0000"})
    assert_problem(nul, 422, "external_id")


async def test_message_external_ids_are_unique_and_make_retries_safe(
    client: Client, db: psycopg.Connection
) -> None:
    url = "/v1/conversations/ext:imported/messages"
    batch = {"messages": [{"role": "user", "content": "hi", "external_id": "msg-1"}]}
    first = await client.post(url, json=batch)
    retry = await client.post(url, json=batch)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["items"] == first.json()["items"]
    assert first.json()["items"][0]["external_id"] == "msg-1"
    count = db.execute("SELECT count(*) FROM messages WHERE external_id = 'msg-1'").fetchone()
    assert count == (1,)

    changed = {"messages": [{"role": "user", "content": "changed", "external_id": "msg-1"}]}
    assert_problem(await client.post(url, json=changed), 409, "messages[0].external_id")
    with_other_id = {"messages": [{**batch["messages"][0], "id": str(uuid.uuid4())}]}
    assert_problem(await client.post(url, json=with_other_id), 409, "messages[0].external_id")
    twice = {"messages": [batch["messages"][0], {**batch["messages"][0], "content": "again"}]}
    assert_problem(await client.post(url, json=twice), 422, "messages[1].external_id")


async def test_roles_as_the_apps_have_them(client: Client) -> None:
    url = "/v1/conversations/ext:roles/messages"
    stored = await client.post(
        url,
        json={
            "messages": [
                {"role": "narrator", "content": "Once"},
                {"role": "tool_result", "content": "ok"},
            ]
        },
    )
    assert [m["role"] for m in stored.json()["items"]] == ["narrator", "tool_result"]
    for role in ("Narrator", "9lives", "x" * 33, ""):
        bad = await client.post(url, json={"messages": [{"role": role, "content": "x"}]})
        assert_problem(bad, 422, "messages[0].role")


async def test_a_claim_that_would_clash_external_ids_moves_nothing(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    client = anonymous_client
    for who in (VISITOR, ALICE):
        url = "/v1/conversations/ext:onboarding/messages"
        assert (await client.post(url, json=messages_body("x"), headers=who)).status_code == 201
    await client.post(
        "/v1/conversations/ext:other/messages", json=messages_body("y"), headers=VISITOR
    )
    claim = {"session_id": VISITOR["X-Session-ID"]}
    refused = await client.post("/v1/users/alice/claim", json=claim, headers=ALICE)
    body = assert_problem(refused, 409, "session_id")
    assert "'onboarding'" in body["detail"]
    assert db.execute("SELECT count(*) FROM conversations WHERE user_id = 'alice'").fetchone() == (
        1,
    )
    # Once one side is gone, the claim goes through.
    await client.delete("/v1/conversations/ext:onboarding", headers=ALICE)
    claimed = await client.post("/v1/users/alice/claim", json=claim, headers=ALICE)
    assert claimed.json() == {"claimed": 2}


async def test_files_by_external_id_and_an_upload_creating_the_conversation(
    client: Client, db: psycopg.Connection
) -> None:
    url = "/v1/conversations/ext:form-9/files"
    uploaded = await client.post(
        url, files={"file": ("id.pdf", b"%PDF-1.7", "application/pdf")}, data={"user_id": "u9"}
    )
    assert uploaded.status_code == 201, uploaded.text
    row = db.execute(
        "SELECT id, user_id FROM conversations WHERE external_id = 'form-9'"
    ).fetchone()
    assert row is not None
    assert (str(row[0]), row[1]) == (uploaded.json()["conversation_id"], "u9")
    file_id = uploaded.json()["id"]
    assert [f["id"] for f in (await client.get(url)).json()["items"]] == [file_id]
    assert (await client.get(f"{url}/{file_id}/content")).content == b"%PDF-1.7"
    assert (await client.get(f"{url}/{file_id}")).json()["filename"] == "id.pdf"
    assert (await client.delete(f"{url}/{file_id}")).status_code == 204
    # The next turn lands in the same conversation.
    appended = await client.post(
        "/v1/conversations/ext:form-9/messages", json={**messages_body("hi"), "user_id": "u9"}
    )
    assert appended.json()["items"][0]["conversation_id"] == uploaded.json()["conversation_id"]
