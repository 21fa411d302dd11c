"""The query registry against the real schema: every registered query prepares, and rows match
the Structs built from them by position. (Loading rules: tests/unit/test_query_registry.py.)"""

from __future__ import annotations

import asyncpg
import pytest

from service.core.schemas import Conversation, Message, PromptSummary, PromptVersion
from service.db.pool import init_connection
from service.db.queries import load_queries, queries
from service.db.resources import SQL_DIR

PAGE_EXTRA_COLUMNS = {"running_bytes", "conversation_version", "conversation_created_at"}


async def test_runner_refuses_a_query_declared_with_another_command(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(TypeError, match="declared :val"):
            await queries().one(conn, "health.server_version")
    finally:
        await conn.close()


async def test_every_registered_query_prepares_against_the_migrated_schema(
    database_url: str,
) -> None:
    registry = load_queries(SQL_DIR)
    assert len(registry) >= 20
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    try:
        for key, query in registry.items():
            try:
                statement = await conn.prepare(query.sql)
            except asyncpg.PostgresError as exc:
                pytest.fail(f"{key} ({query.source}) does not prepare: {exc}")
            columns = tuple(attribute.name for attribute in statement.get_attributes())
            for struct in (Message, Conversation, PromptVersion, PromptSummary):
                # The stores build Structs from rows by position (history pages carry more
                # columns after the Message's: their running byte count and the revision).
                fields = struct.__struct_fields__
                if set(columns) - PAGE_EXTRA_COLUMNS == set(fields):
                    assert columns[: len(fields)] == fields, key
    finally:
        await conn.close()
