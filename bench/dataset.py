"""The benchmark's database: a server, a fresh database, the schema and the data set."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.core.principal import ALL_PERMISSIONS
from service.db import migrations
from service.db.embedded import EmbeddedPostgres
from service.db.queries import parse_file
from service.history import keys

DATASET_SQL = {
    query.key: query for query in parse_file(Path(__file__).with_name("sql") / "dataset.sql")
}
DATABASE = "chatkeep_bench"
# A server of its own gets memory for the data set; durability stays on (fsync, WAL as default).
SERVER_OPTIONS = {"shared_buffers": "1GB", "max_connections": "200"}


@dataclass(frozen=True)
class Shape:
    conversations: int
    messages: int
    users: int
    growth: list[int]


@contextmanager
def server(named_url: str | None) -> Iterator[str]:
    """The URL of a fresh benchmark database on the named server, else on a throwaway one."""
    if named_url:
        yield _fresh_database(named_url)
        return
    directory = Path(tempfile.mkdtemp(prefix="chatkeep-bench-"))
    directory.chmod(0o755)
    # TCP, as a deployed database is reached (and pgbench's -h/-p in bench/run.py need it).
    embedded = EmbeddedPostgres(directory, server_options=SERVER_OPTIONS, tcp=True)
    try:
        yield _fresh_database(embedded.start())
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _fresh_database(url: str) -> str:
    async def recreate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await conn.close()

    asyncio.run(recreate())
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{DATABASE}"))


async def _run(conn: asyncpg.Connection, key: str, **params: object) -> None:
    query = DATASET_SQL[key]
    await conn.execute(query.sql, *query.arguments(params))


async def _populate(url: str, shape: Shape) -> str:
    conn = await asyncpg.connect(url)
    try:
        await _run(
            conn,
            "dataset.conversations",
            conversations=shape.conversations,
            users=shape.users,
            messages=shape.messages,
        )
        await _run(
            conn,
            "dataset.messages",
            first=1,
            last=shape.conversations,
            prefix="bench-",
            messages=shape.messages,
        )
        for size in shape.growth:
            await _run(conn, "dataset.growing", size=size)
            await _run(
                conn, "dataset.messages", first=size, last=size, prefix="grow-", messages=size
            )
        await conn.execute("VACUUM ANALYZE")
        # Flush the load's writes now, or the checkpoint they trigger runs during the first
        # measurements (and showed up as seconds-long p99s).
        await conn.execute("CHECKPOINT")
        return await keys.issue(conn, name="benchmark", permissions=ALL_PERMISSIONS)
    finally:
        await conn.close()


def populate(url: str, shape: Shape) -> str:
    """Migrate and load the data set; returns an API key for the load generator."""
    migrations.apply(url)
    return asyncio.run(_populate(url, shape))


def derived_id(prefix: str, n: int) -> str:
    """A conversation id as sql/dataset.sql derives it: md5(prefix || n)::uuid."""
    return str(uuid.UUID(hashlib.md5(f"{prefix}{n}".encode()).hexdigest()))  # noqa: S324


def conversation_ids(shape: Shape) -> list[str]:
    return [derived_id("bench-", n) for n in range(1, shape.conversations + 1)]
