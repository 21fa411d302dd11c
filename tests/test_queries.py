"""The query registry: loading rules, and every registered query prepared on the real schema."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from service.core.schemas import Conversation, Message, PromptSummary, PromptVersion
from service.db.pool import init_connection
from service.db.queries import QueryFileError, load_queries, queries
from service.db.resources import SQL_DIR


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


def test_loads_namespaced_queries_with_docstrings(tmp_path: Path) -> None:
    write(
        tmp_path,
        "things.sql",
        "-- Things.\n\n-- name: first :one\n-- The first thing.\n-- Really.\n"
        "SELECT 1;\n\n-- name: all :many\nSELECT 2;\n",
    )
    registry = load_queries(tmp_path)
    assert list(registry) == ["things.first", "things.all"]
    assert registry["things.first"].doc == "The first thing.\nReally."
    assert registry["things.first"].sql == "SELECT 1;"
    assert registry["things.all"].command == ":many"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.sql": "-- name: x :maybe\nSELECT 1;"}, "unknown command"),
        ({"a.sql": "-- name: x\nSELECT 1;"}, "expected"),
        ({"a.sql": "-- name: x :one\nSELECT 1;\n-- name: x :one\nSELECT 2;"}, "duplicate"),
        ({"a.sql": "SELECT 1;\n-- name: x :one\nSELECT 1;"}, "outside a named query"),
        ({"a.sql": "-- name: x :one\n-- only a comment\n"}, "has no SQL"),
        ({"a.sql": "-- nothing here\n"}, "no queries"),
    ],
)
def test_refuses_broken_files(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(QueryFileError, match=message):
        load_queries(tmp_path)


def test_same_name_in_two_files_is_two_keys(tmp_path: Path) -> None:
    write(tmp_path, "a.sql", "-- name: get :one\nSELECT 1;")
    write(tmp_path, "b.sql", "-- name: get :one\nSELECT 2;")
    assert sorted(load_queries(tmp_path)) == ["a.get", "b.get"]


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
                # The stores build Structs from rows by position.
                if set(columns) == set(struct.__struct_fields__):
                    assert columns == struct.__struct_fields__, key
    finally:
        await conn.close()
