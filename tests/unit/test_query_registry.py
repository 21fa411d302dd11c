"""The query registry's rules, without a database: loading, named parameters, and the access
scope every query addressing a conversation carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.db.queries import (
    QueryArgumentsError,
    QueryFileError,
    compile_parameters,
    load_queries,
)
from service.db.resources import SQL_DIR

# The access predicate, word for word as sql/conversations.sql states it.
SCOPE_PREDICATE = (
    "(:caller_trusted::boolean OR c.user_id = :caller_user_id::text "
    "OR c.visitor_hash = :caller_visitor_hash::bytea)"
)
SCOPE_PARAMETERS = {"caller_trusted", "caller_user_id", "caller_visitor_hash"}
REGISTRY = load_queries(SQL_DIR)


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
        ({"a.sql": "-- name: x :one\nSELECT * FROM t WHERE id = $1;"}, "a.sql:1: positional"),
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


def test_named_parameters_become_positional_in_order_of_first_use() -> None:
    sql, names = compile_parameters(
        "SELECT * FROM m WHERE c = :conversation_id AND s < :before AND c2 = :conversation_id",
        "test",
    )
    assert sql == "SELECT * FROM m WHERE c = $1 AND s < $2 AND c2 = $1"
    assert names == ("conversation_id", "before")


def test_casts_strings_identifiers_and_comments_hold_no_parameters() -> None:
    text = (
        "SELECT :a::text, 'x :b y', \"col:c\", E'\\x1f' -- :d in a comment\n"
        "FROM t WHERE f = :e::uuid AND g = 'it''s :f'"
    )
    sql, names = compile_parameters(text, "test")
    assert names == ("a", "e")
    assert sql == (
        "SELECT $1::text, 'x :b y', \"col:c\", E'\\x1f' -- :d in a comment\n"
        "FROM t WHERE f = $2::uuid AND g = 'it''s :f'"
    )


def test_a_call_names_exactly_the_parameters_of_its_query(tmp_path: Path) -> None:
    write(tmp_path, "t.sql", "-- name: get :one\nSELECT :x::int + :y::int;")
    query = load_queries(tmp_path)["t.get"]
    assert query.arguments({"y": 2, "x": 1}) == [1, 2]
    with pytest.raises(QueryArgumentsError, match=r"t\.get \(t\.sql:1\): missing y$"):
        query.arguments({"x": 1})
    with pytest.raises(QueryArgumentsError, match="missing y; unknown z"):
        query.arguments({"x": 1, "z": 3})


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_every_registered_query_refuses_a_missing_or_unknown_parameter(key: str) -> None:
    query = REGISTRY[key]
    complete = dict.fromkeys(query.params)
    assert query.arguments(complete) == [None] * len(query.params)
    with pytest.raises(QueryArgumentsError, match="unknown not_a_parameter"):
        query.arguments({**complete, "not_a_parameter": 1})
    for name in query.params:
        with pytest.raises(QueryArgumentsError, match=f"missing {name}"):
            query.arguments({other: None for other in query.params if other != name})


def test_the_registry_holds_no_positional_parameter() -> None:
    for key, query in REGISTRY.items():
        assert "$" not in query.text.replace("$$", ""), key


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_every_query_addressing_a_conversation_carries_the_scope(key: str) -> None:
    """A query that names a conversation (or several) either checks the caller's scope with the
    one predicate, word for word, or says on an 'Unscoped:' line why it needs none."""
    query = REGISTRY[key]
    addresses_conversation = any(name.startswith("conversation_id") for name in query.params)
    flat = " ".join(query.text.split())
    scoped = SCOPE_PREDICATE in flat
    if addresses_conversation:
        assert scoped or "Unscoped:" in query.doc, f"{key} ({query.source}) has no scope"
    if set(query.params) >= SCOPE_PARAMETERS:
        # Every use of the caller's parameters is the predicate itself.
        assert flat.count(":caller_user_id") == flat.count(SCOPE_PREDICATE), key
