"""Assertions shared by the API tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg


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
