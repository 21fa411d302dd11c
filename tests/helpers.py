"""Assertions shared by the API tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpx
import jwt
import psycopg

from service.core.principal import Permission
from service.history import keys

JWT_SECRET = "chatkeep-tests-jwt-secret-" + "0123456789abcdef" * 3


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status, naming this field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def new_conversation() -> tuple[str, str]:
    """A fresh conversation id (appending creates it) and its messages URL."""
    conversation_id = str(uuid.uuid4())
    return conversation_id, f"/v1/conversations/{conversation_id}/messages"


def messages_body(*contents: str, role: str = "user", **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content, **fields} for content in contents]}


def stored_counts(
    db: psycopg.Connection, conversation_id: str
) -> tuple[int, int | None, int | None]:
    """(message rows stored, the conversation's message_count, its last_seq) straight from SQL;
    the last two are None when the conversation does not exist."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM messages WHERE conversation_id = %(id)s), "
        "(SELECT message_count FROM conversations WHERE id = %(id)s), "
        "(SELECT last_seq FROM conversations WHERE id = %(id)s)",
        {"id": conversation_id},
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def create_key(database_url: str, permissions: Iterable[Permission]) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        return await keys.issue(conn, name="tests", permissions=permissions)
    finally:
        await conn.close()


def user_token(user_id: str, *, secret: str = JWT_SECRET, ttl: float = 3600, **claims: Any) -> str:
    """A user token as an application's login service would sign it."""
    payload = {"sub": user_id, "exp": int(time.time() + ttl), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(credentials: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials}"}
