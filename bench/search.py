"""Search over 1,000,000 messages: p50 and p99 of a user's own history searched through the
HTTP API (wrk), in-process (history.search.find over asyncpg, no HTTP) and as the bare SQL
statement (pgbench), for four kinds of query; what migration 0010 costs on that database and
what its indexes cost an insert; and, for comparison, searching every user's messages.

    python -m bench.search [--users 1000] [--conversations 20] [--messages 50] [--seconds 10]

Writes bench/search_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
from yoyo import get_backend, read_migrations

from bench import dataset, load, pgbench_scripts, run, servers
from bench import search_dataset as data
from service.core.principal import ALL_PERMISSIONS, Principal
from service.core.search import START, like_pattern
from service.core.settings import Settings
from service.db.dburl import yoyo_url
from service.db.resources import MIGRATIONS_DIR
from service.history import keys, search

HERE = Path(__file__).parent
RESULTS = HERE / "search_results.json"
SEARCH_MIGRATION = "0010.search"
PAGE = 20
LOCAL = Principal(kind="key", permissions=ALL_PERMISSIONS)


@dataclass(frozen=True)
class Kind:
    """A kind of query: its label, and how to pick one (a fixed text, or an order number)."""

    label: str
    text: str | None  # None: a random order number ORD-2024-nnnnn per request

    def pick(self, rng: random.Random) -> str:
        return self.text if self.text is not None else data.order_number(rng)

    def sql(self) -> tuple[str, str]:
        """(query, pattern) as pgbench expressions (:o is a random number)."""
        if self.text is not None:
            return f"'{self.text}'", f"'{like_pattern(self.text)}'"
        number = "('ORD-2024-' || lpad(:o::text, 5, '0'))"
        return number, f"('%' || {number} || '%')"


KINDS = [
    Kind("a word: invoice", "invoice"),
    Kind("two words: payment failed", "payment failed"),
    Kind("an order number: ORD-2024-nnnnn", None),
    Kind("Japanese: 請求書", "請求書"),
]


# --- the database ---------------------------------------------------------------------------


def migrate(url: str, *, search_too: bool) -> None:
    """Apply the migrations before 0010.search, or all of them."""
    backend = get_backend(yoyo_url(url))
    try:
        with backend.lock():
            migrations = read_migrations(str(MIGRATIONS_DIR))
            if not search_too:
                migrations = migrations.filter(lambda m: m.id < SEARCH_MIGRATION)
            backend.apply_migrations(backend.to_apply(migrations))
    finally:
        backend.connection.close()


INSERT_ONE = """
WITH c AS (
    UPDATE conversations SET last_seq = last_seq + 1, message_count = message_count + 1
    WHERE id = $1 RETURNING last_seq
)
INSERT INTO messages (conversation_id, seq, id, role, content)
SELECT $1, last_seq, gen_random_uuid(), 'user', $2 FROM c
"""


async def insert_cost_us(url: str, shape: data.Shape, count: int = 2000) -> float:
    """Median microseconds of one single-message insert (each its own transaction)."""
    rng = random.Random(1)  # noqa: S311 - reproducible picks
    conn = await asyncpg.connect(url)
    try:
        timings = []
        for _ in range(count):
            n = rng.randrange(shape.users * shape.conversations)
            started = time.perf_counter()
            await conn.execute(INSERT_ONE, dataset.derived_id("bench-", n + 1), data.content(rng))
            timings.append((time.perf_counter() - started) * 1e6)
        return median(timings)
    finally:
        await conn.close()


async def sizes(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT pg_size_pretty(pg_table_size('messages')) AS messages_table, "
            "pg_size_pretty(pg_relation_size('messages_search_vector')) AS search_vector_index, "
            "pg_size_pretty(pg_relation_size('messages_content_trigrams')) AS trigram_index"
        )
        assert row is not None  # a SELECT without FROM returns its row
        return {key: str(value) for key, value in row.items()}
    finally:
        await conn.close()


async def settle(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# --- measuring ------------------------------------------------------------------------------


def _percentiles(milliseconds: list[float]) -> dict[str, float]:
    ordered = sorted(milliseconds)
    return {
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "rate": len(ordered) / (sum(ordered) / 1000),
    }


async def in_process(url: str, kind: Kind, users: int, seconds: float) -> dict[str, float]:
    """history.search.find as the handler calls it, one search at a time, for a random user."""
    rng = random.Random(2)  # noqa: S311 - reproducible picks
    settings = Settings()
    conn = await asyncpg.connect(url)
    try:
        timings: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            q, user = kind.pick(rng), data.user_id(rng.randrange(users))
            started = time.perf_counter()
            await search.find(
                conn,
                LOCAL,
                q=q,
                user_id=user,
                conversation=None,
                role=None,
                topic=None,
                since=None,
                until=None,
                limit=PAGE,
                page_cursor=None,
                settings=settings,
            )
            timings.append((time.perf_counter() - started) * 1000)
        return _percentiles(timings)
    finally:
        await conn.close()


def statements(kind: Kind, users: int | None) -> tuple[str, str]:
    """The service's two statements, as pgbench runs them: planning for the values, then the
    search of user 'user-' || :u (of everyone's messages when ``users`` is None)."""
    query, pattern = kind.sql()
    values = {
        "query": query,
        "pattern": pattern,
        "user_id": "NULL" if users is None else "('user-' || :u)",
        "conversation_id": "NULL",
        "role": "NULL",
        "topic": "NULL",
        "since": "NULL",
        "until": "NULL",
        "after_rank": "'Infinity'",
        "after_at": f"'{START.created_at.isoformat()}'",
        "after_conversation_id": f"'{START.conversation_id}'",
        "after_seq": str(START.seq),
        "max_rows": str(PAGE + 1),
        **pgbench_scripts.TRUSTED,
    }
    return (
        pgbench_scripts.statement("conversation_lists.plan_for_these_values", {}),
        pgbench_scripts.statement("search.messages", values),
    )


def pgbench_script(kind: Kind, users: int | None) -> str:
    """A random user (:u) and order number (:o); the statements in one transaction."""
    plan, statement = statements(kind, users)
    return (
        f"\\set u random(0, {max(0, (users or 1) - 1)})\n\\set o random(0, 99999)\n"
        f"BEGIN;\n{plan};\n{statement};\nCOMMIT;\n"
    )


def paths_file(scratch: Path, kind: Kind, users: int | None) -> Path:
    """Request paths for wrk: random users and (order numbers) random queries."""
    rng = random.Random(3)  # noqa: S311 - reproducible picks
    lines = []
    for _ in range(5000):
        params = {"q": kind.pick(rng), "limit": str(PAGE)}
        if users is not None:
            params["user_id"] = data.user_id(rng.randrange(users))
        lines.append("/v1/search?" + urllib.parse.urlencode(params))
    path = scratch / f"paths-{KINDS.index(kind)}-{users}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def http(
    server: servers.Server, paths: Path, token: str, concurrency: int, seconds: float
) -> load.Result:
    command = [
        "wrk",
        f"-t{load.threads_for(concurrency)}",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "wrk" / "search.lua"),
        server.url,
        "--",
        str(paths),
        token,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = load.WRK_RESULT.search(output)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    result = json.loads(found[1])
    return load.Result(
        rate=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=result["errors"],
    )


async def plan_of(url: str, kind: Kind) -> str:
    """EXPLAIN ANALYZE of user-1's search, planned as the service plans it."""
    plan, statement = statements(kind, 1)
    # pgbench's variables (not the casts' ::uuid).
    statement = re.sub(r"(?<!:):o\b", "42", re.sub(r"(?<!:):u\b", "1", statement))
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(plan)
            rows = await conn.fetch("EXPLAIN (ANALYZE, COSTS off) " + statement)
        return "\n".join(row[0] for row in rows)
    finally:
        await conn.close()


def over_http(
    url: str, token: str, args: argparse.Namespace, scratch: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """wrk against `chatkeep serve`: each kind of query in a user's own history at c1 and c8,
    and two kinds over everyone's messages at c1."""
    own: dict[str, Any] = {}
    everything: dict[str, Any] = {}
    env = {"DATABASE_URL": url, "CHATKEEP_LOG_LEVEL": "warning"}
    with servers.serving(servers.chatkeep(args.workers), env, "/health/ready") as server:
        for kind in KINDS:
            paths = paths_file(scratch, kind, args.users)
            http(server, paths, token, 1, 2)  # warm-up
            own[kind.label] = {
                "http_c1": asdict(http(server, paths, token, 1, args.seconds)),
                "http_c8": asdict(http(server, paths, token, 8, args.seconds)),
            }
            print(f"  own, {kind.label}: {own[kind.label]}", flush=True)
        for kind in (KINDS[0], KINDS[2]):
            paths = paths_file(scratch, kind, None)
            everything[kind.label] = {
                "http_c1": asdict(http(server, paths, token, 1, args.seconds))
            }
            print(f"  everything, {kind.label}: {everything[kind.label]}", flush=True)
    return own, everything


# --- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--conversations", type=int, default=20, help="per user")
    parser.add_argument("--messages", type=int, default=50, help="per conversation")
    parser.add_argument("--seconds", type=float, default=10, help="per measurement")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    shape = data.Shape(args.users, args.conversations, args.messages)
    run.ensure_tools()
    started = time.time()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.search", *(argv or sys.argv[1:])]),
        "shape": asdict(shape) | {"total": shape.total},
        "seconds": args.seconds,
        "workers": args.workers,
        "page": PAGE,
    }
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        migrate(url, search_too=False)
        print(f"bench: loading {shape.total:,} messages", flush=True)
        loading = time.monotonic()
        asyncio.run(_load(url, shape))
        results["load_seconds"] = time.monotonic() - loading
        asyncio.run(settle(url))
        results["insert_us_before"] = asyncio.run(insert_cost_us(url, shape))
        print("bench: migration 0010.search", flush=True)
        migrating = time.monotonic()
        migrate(url, search_too=True)
        results["migration_seconds"] = time.monotonic() - migrating
        asyncio.run(settle(url))
        results["insert_us_after"] = asyncio.run(insert_cost_us(url, shape))
        results["sizes"] = asyncio.run(sizes(url))
        results["plan"] = asyncio.run(plan_of(url, KINDS[0]))
        token = asyncio.run(_key(url))
        results["own"], results["everything"] = over_http(url, token, args, scratch)
        for kind in KINDS:
            row = results["own"][kind.label]
            row["in_process"] = asyncio.run(in_process(url, kind, args.users, args.seconds))
            script = pgbench_scripts.write(scratch, "search", pgbench_script(kind, args.users))
            floor = load.pgbench([url], script, concurrency=1, seconds=args.seconds)
            row["pgbench_c1"] = asdict(floor)
            print(f"  own, {kind.label}: in-process {row['in_process']}, pgbench {floor}")
    results["machine_note"] = (
        "the 2-core machine was shared with other engineers' work while this ran"
    )
    results["total_seconds"] = time.time() - started
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"bench: wrote {RESULTS}")
    return 0


async def _load(url: str, shape: data.Shape) -> None:
    conn = await asyncpg.connect(url)
    try:
        await data.load(conn, shape)
    finally:
        await conn.close()


async def _key(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return await keys.issue(conn, name="search-benchmark", permissions=ALL_PERMISSIONS)
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
