"""The benchmark's floor, bench/bare_asgi.py, still runs the service's statements: it calls the
registry's queries by name, so a statement that takes a new parameter breaks it, and a broken
floor makes every "÷ bare" in bench/REPORT.md meaningless (its appends once all failed that way,
unnoticed, because wrk counts a 500 as a reply)."""

from __future__ import annotations

import uuid

import httpx
import psycopg

from bench import servers


def test_the_bare_handler_serves_its_three_routes(database_url: str) -> None:
    conversation_id = str(uuid.uuid4())
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO conversations (id, user_id) VALUES (%s, 'user-0')", [conversation_id]
        )
    probe = "/v1/conversations?user_id=user-0"
    env = {"DATABASE_URL": database_url}
    with servers.serving(servers.bare(1), env, probe) as server:
        path = f"{server.url}/v1/conversations/{conversation_id}/messages"
        turn = {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
        }
        appended = httpx.post(path, json=turn)
        assert appended.status_code == 201, appended.text
        assert [item["seq"] for item in appended.json()["items"]] == [1, 2]
        page = httpx.get(path)
        assert page.status_code == 200, page.text
        assert [item["content"] for item in page.json()["items"]] == ["hi", "yo"]
        listed = httpx.get(server.url + probe)
        assert [item["id"] for item in listed.json()["items"]] == [conversation_id]
