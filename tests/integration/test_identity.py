"""Identity and access: every endpoint refuses callers that do not belong, in SQL and over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import psycopg
import pytest

from service.core.principal import Permission
from tests.helpers import JWT_SECRET, assert_problem, bearer, create_key, user_token
from tests.integration.conftest import Client

VISITOR = {"X-Session-ID": "visitor-a-0123456789abcdef"}
OTHER_VISITOR = {"X-Session-ID": "visitor-b-0123456789abcdef"}
ALICE = bearer(user_token("alice"))
BOB = bearer(user_token("bob"))


def turn(*contents: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content} for content in contents]}


async def start_conversation(client: Client, headers: dict[str, str]) -> tuple[str, str]:
    """A conversation of the caller with one message: (conversation id, message id)."""
    conversation_id = str(uuid.uuid4())
    response = await client.post(
        f"/v1/conversations/{conversation_id}/messages", json=turn("mine"), headers=headers
    )
    assert response.status_code == 201, response.text
    return conversation_id, response.json()["items"][0]["id"]


def conversation_requests(conversation_id: str, message_id: str) -> list[tuple[str, str, Any]]:
    """Every endpoint that addresses one conversation: (method, url, json body)."""
    base = f"/v1/conversations/{conversation_id}"
    message = f"{base}/messages/{message_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"title": "taken over"}),
        ("DELETE", base, None),
        ("POST", f"{base}/messages", turn("intruder")),
        ("GET", f"{base}/messages", None),
        ("DELETE", f"{base}/messages", None),
        ("GET", message, None),
        ("PATCH", message, {"content": "rewritten"}),
        ("DELETE", message, None),
    ]


def every_request(conversation_id: str, message_id: str) -> list[tuple[str, str, Any]]:
    return [
        *conversation_requests(conversation_id, message_id),
        ("POST", "/v1/conversations", {}),
        ("GET", "/v1/conversations", None),
        ("POST", "/v1/users/alice/claim", {"session_id": VISITOR["X-Session-ID"]}),
        ("DELETE", "/v1/users/alice", None),
    ]


def forged_tokens() -> dict[str, str]:
    valid = user_token("alice")
    header, _payload, signature = valid.split(".")
    other_payload = jwt.encode({"sub": "mallory", "exp": 2**31}, "x" * 32).split(".")[1]
    return {
        "expired": user_token("alice", ttl=-60),
        "wrong secret": user_token("alice", secret="not-the-secret-" * 3),
        "tampered payload": f"{header}.{other_payload}.{signature}",
        "alg none": jwt.encode({"sub": "alice", "exp": 2**31}, None, algorithm="none"),
        "alg HS512": jwt.encode({"sub": "alice", "exp": 2**31}, JWT_SECRET, algorithm="HS512"),
        "no exp": jwt.encode({"sub": "alice"}, JWT_SECRET, algorithm="HS256"),
        "no sub": jwt.encode({"exp": 2**31}, JWT_SECRET, algorithm="HS256"),
        "not yet valid": user_token("alice", nbf=2**31),
        "issued in the future": user_token("alice", iat=2**31),
        "empty sub": user_token(""),
        "garbage": "not.a.token",
    }


async def revoked_key(database_url: str, client: Client) -> str:
    key = await create_key(database_url, [Permission.READ, Permission.WRITE])
    assert (await client.get("/v1/conversations", headers=bearer(key))).status_code == 200
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE %s LIKE 'ck_' || id || '_%%'", [key]
        )
    return key


def history(db: psycopg.Connection, conversation_id: str) -> list[tuple[Any, ...]]:
    """Everything stored about a conversation, to check an intruder changed nothing."""
    return db.execute(
        "SELECT c.title, c.user_id, c.message_count, m.seq, m.content FROM conversations c "
        "LEFT JOIN messages m ON m.conversation_id = c.id WHERE c.id = %s ORDER BY m.seq",
        [conversation_id],
    ).fetchall()


async def test_without_usable_credentials_every_endpoint_is_401(
    anonymous_client: Client, database_url: str, db: psycopg.Connection
) -> None:
    conversation_id, message_id = await start_conversation(anonymous_client, ALICE)
    before = history(db, conversation_id)
    key = await revoked_key(database_url, anonymous_client)
    bad_credentials: dict[str, dict[str, str]] = {
        "none": {},
        "revoked key": bearer(key),
        "unknown key": bearer(f"ck_{'0' * 12}_{'A' * 43}"),
        "right key id, wrong secret": bearer(key[:16] + "B" * 43),
        "malformed key": bearer("ck_nonsense"),
        "basic auth": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        "empty bearer": {"Authorization": "Bearer "},
        "short session id": {"X-Session-ID": "too-short"},
        "session id with spaces": {"X-Session-ID": "a session id with spaces"},
        **{f"token {name}": bearer(token) for name, token in forged_tokens().items()},
    }
    for name, headers in bad_credentials.items():
        for method, url, body in every_request(conversation_id, message_id):
            response = await anonymous_client.request(method, url, json=body, headers=headers)
            problem = assert_problem(response, 401)
            assert problem["field"] in ("Authorization", "X-Session-ID"), (name, problem)
            assert response.headers["www-authenticate"].startswith("Bearer"), name
    assert history(db, conversation_id) == before


@pytest.mark.parametrize(
    ("owner", "intruder"),
    [(ALICE, BOB), (VISITOR, OTHER_VISITOR), (ALICE, VISITOR), (VISITOR, BOB)],
)
async def test_someone_elses_conversation_is_404_and_untouched(
    anonymous_client: Client,
    db: psycopg.Connection,
    owner: dict[str, str],
    intruder: dict[str, str],
) -> None:
    conversation_id, message_id = await start_conversation(anonymous_client, owner)
    before = history(db, conversation_id)
    for method, url, body in conversation_requests(conversation_id, message_id):
        response = await anonymous_client.request(method, url, json=body, headers=intruder)
        assert_problem(response, 404, "conversation_id")
    listed = (await anonymous_client.get("/v1/conversations", headers=intruder)).json()
    assert conversation_id not in [item["id"] for item in listed["items"]]
    taken = await anonymous_client.post(
        "/v1/conversations", json={"id": conversation_id}, headers=intruder
    )
    assert_problem(taken, 409, "id")
    assert history(db, conversation_id) == before
    # The owner still has it all.
    mine = await anonymous_client.get(
        f"/v1/conversations/{conversation_id}/messages", headers=owner
    )
    assert [item["content"] for item in mine.json()["items"]] == ["mine"]


async def test_users_and_visitors_act_only_as_themselves(anonymous_client: Client) -> None:
    for headers in (BOB, VISITOR, OTHER_VISITOR):
        claim = await anonymous_client.post(
            "/v1/users/alice/claim", json={"session_id": VISITOR["X-Session-ID"]}, headers=headers
        )
        assert_problem(claim, 403, "user_id")
        assert_problem(await anonymous_client.delete("/v1/users/alice", headers=headers), 403)
    for headers in (BOB, VISITOR):
        listing = await anonymous_client.get("/v1/conversations?user_id=alice", headers=headers)
        assert_problem(listing, 403, "user_id")
        created = await anonymous_client.post(
            "/v1/conversations", json={"user_id": "alice"}, headers=headers
        )
        assert_problem(created, 403, "user_id")
        appended = await anonymous_client.post(
            f"/v1/conversations/{uuid.uuid4()}/messages",
            json={**turn("x"), "user_id": "alice"},
            headers=headers,
        )
        assert_problem(appended, 403, "user_id")


async def test_a_user_sees_and_creates_only_its_own(anonymous_client: Client) -> None:
    mine, _ = await start_conversation(anonymous_client, ALICE)
    await start_conversation(anonymous_client, BOB)
    created = await anonymous_client.post("/v1/conversations", json={"title": "t"}, headers=ALICE)
    assert created.json()["user_id"] == "alice"
    same = await anonymous_client.post(
        "/v1/conversations", json={"user_id": "alice"}, headers=ALICE
    )
    assert same.status_code == 201
    listed = (await anonymous_client.get("/v1/conversations", headers=ALICE)).json()["items"]
    assert {item["user_id"] for item in listed} == {"alice"}
    assert mine in {item["id"] for item in listed}
    assert len(listed) == 3
    filtered = await anonymous_client.get("/v1/conversations?user_id=alice", headers=ALICE)
    assert filtered.json()["items"] == listed


async def test_a_visitor_sees_only_what_it_created(anonymous_client: Client) -> None:
    mine, _ = await start_conversation(anonymous_client, VISITOR)
    await start_conversation(anonymous_client, OTHER_VISITOR)
    await start_conversation(anonymous_client, ALICE)
    listed = (await anonymous_client.get("/v1/conversations", headers=VISITOR)).json()["items"]
    assert [item["id"] for item in listed] == [mine]
    assert listed[0]["user_id"] is None


async def test_the_visitor_id_is_stored_only_as_a_hash(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    conversation_id, _ = await start_conversation(anonymous_client, VISITOR)
    (owner,) = db.execute(
        "SELECT visitor_hash FROM conversations WHERE id = %s", [conversation_id]
    ).fetchone()  # type: ignore[misc]
    assert len(owner) == 32
    session_id = VISITOR["X-Session-ID"].encode()
    dump = db.execute("SELECT string_agg(c::text, '') FROM conversations c").fetchone()[0]  # type: ignore[index]
    assert session_id.decode() not in dump
    assert session_id not in bytes(owner)


async def test_claim_moves_a_visitors_conversations_once(anonymous_client: Client) -> None:
    first, _ = await start_conversation(anonymous_client, VISITOR)
    second, _ = await start_conversation(anonymous_client, VISITOR)
    body = {"session_id": VISITOR["X-Session-ID"]}
    claimed = await anonymous_client.post("/v1/users/alice/claim", json=body, headers=ALICE)
    assert claimed.status_code == 200
    assert claimed.json() == {"claimed": 2}
    again = await anonymous_client.post("/v1/users/alice/claim", json=body, headers=ALICE)
    assert again.json() == {"claimed": 0}
    listed = (await anonymous_client.get("/v1/conversations", headers=ALICE)).json()["items"]
    assert {item["id"] for item in listed} == {first, second}
    assert {item["user_id"] for item in listed} == {"alice"}
    # The visitor's id no longer opens them.
    assert (await anonymous_client.get("/v1/conversations", headers=VISITOR)).json()["items"] == []
    assert_problem(await anonymous_client.get(f"/v1/conversations/{first}", headers=VISITOR), 404)


async def test_claim_by_api_key_and_bad_session_ids(anonymous_client: Client, api_key: str) -> None:
    conversation_id, _ = await start_conversation(anonymous_client, VISITOR)
    client = anonymous_client
    client.headers.update(bearer(api_key))
    claimed = await client.post(
        "/v1/users/carol/claim", json={"session_id": VISITOR["X-Session-ID"]}
    )
    assert claimed.json() == {"claimed": 1}
    assert (await client.get(f"/v1/conversations/{conversation_id}")).json()["user_id"] == "carol"
    for bad in ("short", "x" * 300, "with space 0123456789", "nul\x00" * 5):
        response = await client.post("/v1/users/carol/claim", json={"session_id": bad})
        assert_problem(response, 422, "session_id")
    assert_problem(await client.post("/v1/users/carol/claim", json={}), 422, "session_id")


async def test_erase_deletes_everything_of_one_user(
    anonymous_client: Client, database_url: str, db: psycopg.Connection
) -> None:
    for _ in range(2):
        conversation_id, _ = await start_conversation(anonymous_client, ALICE)
        await anonymous_client.post(
            f"/v1/conversations/{conversation_id}/messages", json=turn("a", "b"), headers=ALICE
        )
    bobs, _ = await start_conversation(anonymous_client, BOB)
    writer = bearer(await create_key(database_url, [Permission.READ, Permission.WRITE]))
    assert_problem(await anonymous_client.delete("/v1/users/alice", headers=writer), 403)

    eraser = bearer(await create_key(database_url, [Permission.ERASE]))
    erased = await anonymous_client.delete("/v1/users/alice", headers=eraser)
    assert erased.status_code == 200
    assert erased.json() == {"conversations": 2, "messages": 6}
    counts = db.execute(
        "SELECT (SELECT count(*) FROM conversations WHERE user_id = 'alice'),"
        " (SELECT count(*) FROM messages m WHERE NOT EXISTS"
        "   (SELECT 1 FROM conversations c WHERE c.id = m.conversation_id))"
    ).fetchone()
    assert counts == (0, 0)
    assert (await anonymous_client.get(f"/v1/conversations/{bobs}", headers=BOB)).status_code == 200
    again = await anonymous_client.delete("/v1/users/alice", headers=eraser)
    assert again.json() == {"conversations": 0, "messages": 0}


async def test_a_user_may_erase_itself(anonymous_client: Client) -> None:
    await start_conversation(anonymous_client, ALICE)
    erased = await anonymous_client.delete("/v1/users/alice", headers=ALICE)
    assert erased.json() == {"conversations": 1, "messages": 1}


async def test_key_permissions(anonymous_client: Client, database_url: str) -> None:
    reader = bearer(await create_key(database_url, [Permission.READ]))
    assert (await anonymous_client.get("/v1/conversations", headers=reader)).status_code == 200
    for method, url, body in (
        ("POST", "/v1/conversations", {}),
        ("POST", f"/v1/conversations/{uuid.uuid4()}/messages", turn("x")),
        ("DELETE", f"/v1/conversations/{uuid.uuid4()}", None),
        ("POST", "/v1/users/alice/claim", {"session_id": VISITOR["X-Session-ID"]}),
        ("DELETE", "/v1/users/alice", None),
    ):
        response = await anonymous_client.request(method, url, json=body, headers=reader)
        assert_problem(response, 403, "Authorization")
