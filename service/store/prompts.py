"""Named system prompts and their immutable versions (queries in sql/prompts.sql)."""

from __future__ import annotations

from typing import Any

from service.core.schemas import PromptSummary, PromptVersion
from service.db.pool import Connection
from service.db.queries import queries


async def lock_name(conn: Connection, *, name: str) -> None:
    """Serialise writers of prompt ``name`` until the end of the transaction."""
    await queries().exec(conn, "prompts.lock_name", name=name)


async def lock_latest(conn: Connection, *, name: str) -> tuple[PromptVersion, bool] | None:
    """(the latest version, whether the prompt is retired), with the prompt locked until the end
    of the transaction; None for a prompt never stored."""
    row = await queries().one(conn, "prompts.lock_latest", name=name)
    if row is None:
        return None
    *fields, retired = row
    return PromptVersion(*fields), retired


async def add_version(
    conn: Connection, *, name: str, content: str, metadata: dict[str, Any]
) -> PromptVersion:
    """The prompt's next version (creating the prompt, or bringing a retired one back)."""
    version = await queries().val(conn, "prompts.bump", name=name)
    row = await queries().one(
        conn,
        "prompts.insert_version",
        name=name,
        version=version,
        content=content,
        metadata=metadata,
    )
    assert row is not None  # an INSERT ... RETURNING always returns its row
    return PromptVersion(*row)


async def get(conn: Connection, *, name: str, version: int | None) -> PromptVersion | None:
    row = await queries().one(conn, "prompts.get_version", name=name, version=version)
    return PromptVersion(*row) if row else None


async def versions(conn: Connection, *, name: str, before: int, limit: int) -> list[PromptVersion]:
    rows = await queries().many(
        conn, "prompts.versions", name=name, before_version=before, max_rows=limit
    )
    return [PromptVersion(*row) for row in rows]


async def list_prompts(conn: Connection, *, after: str, limit: int) -> list[PromptSummary]:
    rows = await queries().many(conn, "prompts.list", after_name=after, max_rows=limit)
    return [PromptSummary(*row) for row in rows]


async def retire(conn: Connection, *, name: str) -> bool:
    return await queries().execrows(conn, "prompts.retire", name=name) > 0
