"""The query registry: hand-written SQL from ``sql/*.sql``, loaded once, looked up by name.

A file holds annotated queries, sqlc/aiosql style::

    -- name: latest :many
    -- The newest $2 messages of conversation $1.
    SELECT ... ;

Queries are keyed ``<file stem>.<name>``. Loading refuses unknown commands, duplicate keys and
SQL outside a named query, so a mistake fails at start-up and in CI, never halfway through a
request. Python never builds SQL: it picks a named query and passes ``$n`` parameters.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg

from service.resources import SQL_DIR

COMMANDS = frozenset({":one", ":many", ":val", ":exec", ":execrows"})
HEADER = re.compile(r"^--\s*name:\s*(?P<rest>.*)$")
NAME_AND_COMMAND = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)\s+(?P<command>:[a-z]+)$")

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class QueryFileError(ValueError):
    """A SQL file breaks the registry's rules; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Query:
    key: str
    command: str
    sql: str
    doc: str
    source: str


def parse_file(path: Path) -> Iterator[Query]:
    """The queries of one file, in file order."""
    area = path.stem
    current: dict[str, Any] | None = None
    body: list[str] = []
    doc: list[str] = []

    def finish() -> Iterator[Query]:
        if current is None:
            return
        sql = "\n".join(body).strip()
        if not sql:
            raise QueryFileError(f"{current['source']}: query {current['key']} has no SQL")
        yield Query(current["key"], current["command"], sql, "\n".join(doc), current["source"])

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
    """Runs registered queries; each runner accepts only queries declared with its command."""

    def __init__(self, registry: Mapping[str, Query]) -> None:
        self.registry = registry

    def _sql(self, key: str, command: str) -> str:
        query = self.registry[key]
        if query.command != command:
            raise TypeError(f"{key} is declared {query.command}, not {command}")
        return query.sql

    async def one(self, conn: Connection, key: str, *args: Any) -> asyncpg.Record | None:
        return await conn.fetchrow(self._sql(key, ":one"), *args)

    async def many(self, conn: Connection, key: str, *args: Any) -> list[asyncpg.Record]:
        return await conn.fetch(self._sql(key, ":many"), *args)

    def iterate(
        self, conn: Connection, key: str, *args: Any, prefetch: int = 500
    ) -> AsyncIterator[asyncpg.Record]:
        """The rows of a ``:many`` query through a server-side cursor, ``prefetch`` at a time,
        for results too large to hold (exports). Only inside a transaction."""
        return aiter(conn.cursor(self._sql(key, ":many"), *args, prefetch=prefetch))

    async def val(self, conn: Connection, key: str, *args: Any) -> Any:
        return await conn.fetchval(self._sql(key, ":val"), *args)

    async def exec(self, conn: Connection, key: str, *args: Any) -> None:
        await conn.execute(self._sql(key, ":exec"), *args)

    async def execrows(self, conn: Connection, key: str, *args: Any) -> int:
        """The number of rows the statement touched (from its command tag, e.g. DELETE 3)."""
        status = await conn.execute(self._sql(key, ":execrows"), *args)
        return int(status.rsplit(" ", 1)[-1])


@cache
def queries() -> Queries:
    """The application's registry, loaded from ``sql/`` on first use (at start-up)."""
    return Queries(load_queries(SQL_DIR))
