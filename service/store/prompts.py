"""Named system prompts and their immutable versions (queries in sql/prompts.sql)."""

from __future__ import annotations

from typing import Any

from service.models import PromptSummary, PromptVersion, same_json
from service.queries import Connection, queries


async def put(
    conn: Connection, *, name: str, content: str, metadata: dict[str, Any]
) -> tuple[PromptVersion, bool]:
    """(the version, whether it is new). Putting what the latest version already says returns
    that version, so a retried PUT does not add a version. Run in a transaction."""
    latest = await queries().one(conn, "prompts.lock_latest", name)
    if latest is not None:
        *fields, retired = latest
        current = PromptVersion(*fields)
        if not retired and current.content == content and same_json(current.metadata, metadata):
            return current, False
    version = await queries().val(conn, "prompts.bump", name)
    row = await queries().one(conn, "prompts.insert_version", name, version, content, metadata)
    assert row is not None  # an INSERT ... RETURNING always returns its row
    return PromptVersion(*row), True


async def get(conn: Connection, *, name: str, version: int | None) -> PromptVersion | None:
    row = await queries().one(conn, "prompts.get_version", name, version)
    return PromptVersion(*row) if row else None


async def versions(conn: Connection, *, name: str, before: int, limit: int) -> list[PromptVersion]:
    rows = await queries().many(conn, "prompts.versions", name, before, limit)
    return [PromptVersion(*row) for row in rows]


async def list_prompts(conn: Connection, *, after: str, limit: int) -> list[PromptSummary]:
    rows = await queries().many(conn, "prompts.list", after, limit)
    return [PromptSummary(*row) for row in rows]


async def retire(conn: Connection, *, name: str) -> bool:
    return await queries().execrows(conn, "prompts.retire", name) > 0
