"""The query registry: hand-written SQL from ``sql/*.sql``, loaded once, looked up by name.

A file holds annotated queries, sqlc/aiosql style, with named parameters::

    -- name: latest :many
    -- The newest :max_rows messages of conversation :conversation_id.
    SELECT ... WHERE conversation_id = :conversation_id ... LIMIT :max_rows;

Queries are keyed ``<file stem>.<name>``. Loading refuses unknown commands, duplicate keys, SQL
outside a named query and positional ``$n`` parameters, so a mistake fails at start-up and in
CI, never halfway through a request. Each ``:name`` is compiled to PostgreSQL's ``$n`` at load
time (in order of first use); a runner takes the parameters as keyword arguments and refuses a
call that leaves one out or passes one the query does not name. Python never builds SQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg

from service.db.pool import Connection
from service.db.resources import SQL_DIR

COMMANDS = frozenset({":one", ":many", ":val", ":exec", ":execrows"})
HEADER = re.compile(r"^--\s*name:\s*(?P<rest>.*)$")
NAME_AND_COMMAND = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)\s+(?P<command>:[a-z]+)$")
# What the compiler reads past: string literals, quoted identifiers, comments and ``::`` casts
# (none of them holds a parameter), then the parameters themselves.
_LEXEMES = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::)"""
    r"""|:(?P<name>[a-z_][a-z0-9_]*)|(?P<positional>\$[0-9]+)"""
)


class QueryFileError(ValueError):
    """A SQL file breaks the registry's rules; the message names file and line."""


class QueryArgumentsError(TypeError):
    """A call passes parameters other than those its query names."""


@dataclass(frozen=True, slots=True)
class Query:
    key: str
    command: str
    # As written in the file, with :name parameters.
    text: str
    doc: str
    source: str
    # Compiled for PostgreSQL: :name replaced by $n, n counting names in order of first use.
    sql: str
    params: tuple[str, ...]
    param_set: frozenset[str]

    def arguments(self, named: Mapping[str, Any]) -> list[Any]:
        """The positional values for ``sql``; QueryArgumentsError unless ``named`` has exactly
        the query's parameters."""
        if named.keys() != self.param_set:
            missing = sorted(self.param_set - named.keys())
            unknown = sorted(named.keys() - self.param_set)
            raise QueryArgumentsError(
                f"{self.key} ({self.source}): "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing)}" if missing else "",
                        f"unknown {', '.join(unknown)}" if unknown else "",
                    )
                    if part
                )
            )
        return [named[name] for name in self.params]


def substitute_parameters(text: str, replace: Callable[[str], str], where: str) -> str:
    """``text`` with each :name parameter replaced by ``replace(name)``; positional ``$n``
    parameters are refused (``where`` says where the text is from)."""

    def one(match: re.Match[str]) -> str:
        if match["skip"] is not None:
            return match["skip"]
        if match["positional"] is not None:
            raise QueryFileError(
                f"{where}: positional parameter {match['positional']}; name it (:name)"
            )
        return replace(match["name"])

    return _LEXEMES.sub(one, text)


def compile_parameters(text: str, where: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with each :name replaced by $n, and the names in $n order."""
    names: list[str] = []

    def number(name: str) -> str:
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return substitute_parameters(text, number, where), tuple(names)


def parse_file(path: Path) -> Iterator[Query]:
    """The queries of one file, in file order."""
    area = path.stem
    current: dict[str, Any] | None = None
    body: list[str] = []
    doc: list[str] = []

    def finish() -> Iterator[Query]:
        if current is None:
            return
        text = "\n".join(body).strip()
        if not text:
            raise QueryFileError(f"{current['source']}: query {current['key']} has no SQL")
        sql, params = compile_parameters(text, current["source"])
        yield Query(
            key=current["key"],
            command=current["command"],
            text=text,
            doc="\n".join(doc),
            source=current["source"],
            sql=sql,
            params=params,
            param_set=frozenset(params),
        )

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        header = HEADER.match(line.strip())
        if header:
            yield from finish()
            parsed = NAME_AND_COMMAND.match(header["rest"].strip())
            where = f"{path.name}:{number}"
            if not parsed:
                raise QueryFileError(f"{where}: expected '-- name: <name> <:command>'")
            if parsed["command"] not in COMMANDS:
                raise QueryFileError(
                    f"{where}: unknown command {parsed['command']}; use one of "
                    + ", ".join(sorted(COMMANDS))
                )
            current = {"key": f"{area}.{parsed['name']}", "command": parsed["command"]}
            current["source"] = where
            body, doc = [], []
        elif current is None:
            if line.strip() and not line.strip().startswith("--"):
                raise QueryFileError(f"{path.name}:{number}: SQL outside a named query")
        elif not body and line.strip().startswith("--"):
            doc.append(line.strip().removeprefix("--").strip())
        else:
            body.append(line)
    yield from finish()


def load_queries(directory: Path) -> dict[str, Query]:
    """Every query of every ``*.sql`` file in ``directory``; duplicates are refused."""
    registry: dict[str, Query] = {}
    for path in sorted(directory.glob("*.sql")):
        for query in parse_file(path):
            if query.key in registry:
                raise QueryFileError(
                    f"{query.source}: duplicate query {query.key} "
                    f"(first defined at {registry[query.key].source})"
                )
            registry[query.key] = query
    if not registry:
        raise QueryFileError(f"no queries found in {directory}")
    return registry


class Queries:
    """Runs registered queries with keyword parameters; each runner accepts only queries
    declared with its command."""

    def __init__(self, registry: Mapping[str, Query]) -> None:
        self.registry = registry

    def _prepared(self, key: str, command: str, named: Mapping[str, Any]) -> tuple[str, list[Any]]:
        query = self.registry[key]
        if query.command != command:
            raise TypeError(f"{key} is declared {query.command}, not {command}")
        return query.sql, query.arguments(named)

    async def one(self, conn: Connection, key: str, **params: Any) -> asyncpg.Record | None:
        sql, args = self._prepared(key, ":one", params)
        return await conn.fetchrow(sql, *args)

    async def many(self, conn: Connection, key: str, **params: Any) -> list[asyncpg.Record]:
        sql, args = self._prepared(key, ":many", params)
        return await conn.fetch(sql, *args)

    def iterate(
        self, conn: Connection, key: str, *, prefetch: int = 500, **params: Any
    ) -> AsyncIterator[asyncpg.Record]:
        """The rows of a ``:many`` query through a server-side cursor, ``prefetch`` at a time,
        for results too large to hold (exports). Only inside a transaction."""
        sql, args = self._prepared(key, ":many", params)
        return aiter(conn.cursor(sql, *args, prefetch=prefetch))

    async def val(self, conn: Connection, key: str, **params: Any) -> Any:
        sql, args = self._prepared(key, ":val", params)
        return await conn.fetchval(sql, *args)

    async def exec(self, conn: Connection, key: str, **params: Any) -> None:
        sql, args = self._prepared(key, ":exec", params)
        await conn.execute(sql, *args)

    async def execrows(self, conn: Connection, key: str, **params: Any) -> int:
        """The number of rows the statement touched (from its command tag, e.g. DELETE 3)."""
        sql, args = self._prepared(key, ":execrows", params)
        status = await conn.execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1])


@cache
def queries() -> Queries:
    """The application's registry, loaded from ``sql/`` on first use (at start-up)."""
    return Queries(load_queries(SQL_DIR))
