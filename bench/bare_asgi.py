"""The stack's own ceiling: the benchmark's routes as a bare ASGI app, no framework.

Same uvicorn settings, same pool settings (service.db.pool.create_pool), same SQL from the registry,
msgspec for JSON; no authentication, validation, dependency injection or problem documents.
Run: DATABASE_URL=... uvicorn bench.bare_asgi:app --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import msgspec

from service.core.cursor import START
from service.core.principal import LOCAL
from service.core.schemas import MessageBatch
from service.core.settings import get_settings
from service.db.pool import create_pool
from service.db.queries import queries
from service.history.messages import NO_LOWER_BOUND, NO_UPPER_BOUND

MESSAGES = re.compile(r"^/v1/conversations/([0-9a-f-]{36})/messages$")
TRUSTED = LOCAL.scope()
PAGE = 50
MAX_PAGE_BYTES = get_settings().max_page_bytes
LIST_PAGE = 20
_encode = msgspec.json.Encoder().encode
_batch = msgspec.json.Decoder(MessageBatch).decode
_pool: asyncpg.Pool | None = None


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


async def _latest(conn: Any, conversation_id: uuid.UUID) -> dict[str, Any]:
    rows = await queries().many(
        conn,
        "messages.page_backward",
        conversation_id=conversation_id,
        after_seq=NO_LOWER_BOUND,
        before_seq=NO_UPPER_BOUND,
        max_rows=PAGE + 1,
        max_bytes=MAX_PAGE_BYTES,
        **TRUSTED,
    )
    items = [dict(row) for row in rows[:PAGE]]
    items.reverse()
    return {"items": items, "next_cursor": rows[PAGE - 1]["seq"] if len(rows) > PAGE else None}


async def _list(conn: Any, user_id: str) -> dict[str, Any]:
    after_at, after_id = START
    rows = await queries().many(
        conn,
        "conversation_lists.for_user_by_updated",
        user_id=user_id,
        metadata=None,
        after_at=after_at,
        after_id=after_id,
        max_rows=LIST_PAGE + 1,
    )
    return {"items": [dict(row) for row in rows[:LIST_PAGE]], "next_cursor": None}


async def _append(conn: Any, conversation_id: uuid.UUID, body: bytes) -> dict[str, Any]:
    batch = _batch(body)
    async with conn.transaction():
        locked = await queries().one(
            conn, "conversations.lock_for_append", conversation_id=conversation_id, **TRUSTED
        )
        assert locked is not None
        last_seq = locked["last_seq"]
        rows = await queries().many(
            conn,
            "messages.append_batch",
            conversation_id=conversation_id,
            last_seq=last_seq,
            ids=[uuid.uuid4() for _ in batch.messages],
            roles=[message.role for message in batch.messages],
            contents=[message.content for message in batch.messages],
            topics=[message.topic for message in batch.messages],
            metadata=[message.metadata for message in batch.messages],
            external_ids=[message.external_id for message in batch.messages],
            tokens=[message.tokens for message in batch.messages],
            statuses=[message.status for message in batch.messages],
        )
    return {"items": [dict(row) for row in rows]}


async def _respond(send: Any, status: int, payload: Any) -> None:
    body = _encode(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool  # noqa: PLW0603 - one pool per worker process, like the service
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            _pool = await create_pool(get_settings())
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert _pool is not None
    method, path = scope["method"], scope["path"]
    async with _pool.acquire() as conn:
        if path == "/v1/conversations" and method == "GET":
            query = dict(part.split("=", 1) for part in scope["query_string"].decode().split("&"))
            await _respond(send, 200, await _list(conn, query["user_id"]))
        elif (match := MESSAGES.match(path)) and method == "GET":
            await _respond(send, 200, await _latest(conn, uuid.UUID(match[1])))
        elif match and method == "POST":
            body = await _read_body(receive)
            await _respond(send, 201, await _append(conn, uuid.UUID(match[1]), body))
        else:
            await _respond(send, 404, {"detail": "not found"})
