"""Import and export throughput: `chatkeep import sqlite` of a generated SQLite store (1,000,000
messages by default) into an empty database, next to PostgreSQL's own COPY of the same rows.

    python -m bench.imports [--sessions 1000] [--messages 1000]

Writes bench/import_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import dataset
from service.db import migrations
from service.db.dburl import asyncpg_dsn
from service.transfer.loader import BATCH_MESSAGES

HERE = Path(__file__).parent
RESULTS = HERE / "import_results.json"
CHATKEEP = str(Path(sys.executable).with_name("chatkeep"))
# About the size of a chat turn, as in the HTTP benchmark's data set.
CONTENT = "The quick brown fox jumps over the lazy dog. " * 9


def make_store(path: Path, sessions: int, messages: int) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT, created_at TEXT, "
        "updated_at TEXT, metadata TEXT);"
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id TEXT, role TEXT, "
        "content TEXT, metadata TEXT, created_at TEXT);"
        "CREATE INDEX messages_session ON messages (session_id, created_at);"
    )
    for s in range(sessions):
        db.execute(
            "INSERT INTO sessions VALUES (?, ?, '2024-01-01T00:00:00Z', NULL, '{}')",
            (f"session-{s}", f"Session {s}"),
        )
        db.executemany(
            "INSERT INTO messages (session_id, role, content, metadata, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                (
                    f"session-{s}",
                    "user" if m % 2 == 0 else "assistant",
                    f"{m} {CONTENT}",
                    '{"source": "bench"}',
                    f"2024-01-01T00:{m // 60 % 60:02d}:{m % 60:02d}.{m:06d}Z",
                )
                for m in range(messages)
            ),
        )
    db.commit()
    db.close()


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, the child's peak RSS in MiB, its standard output)."""
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mib, done.stdout.strip()


# COPY of the stored message rows, with one more piece of the schema's work on messages taken
# away at each step (cumulatively): each step's saving is that piece's cost. The first step leaves
# tokens to the trigger (as an import of rows without counts does); the second, the floor the
# import is measured against, sends them (as `chatkeep import sqlite` does for ASCII content).
COPY_STEPS: list[tuple[str, str, str | None]] = [
    ("tokens_trigger", "all triggers and indexes, tokens left to estimate_tokens", None),
    ("floor", "all triggers and indexes, tokens given (the floor)", None),
    (
        "no_events",
        "without the events trigger (0012)",
        "ALTER TABLE messages DISABLE TRIGGER messages_events_added",
    ),
    (
        "no_usage",
        "without the usage trigger (0007)",
        "ALTER TABLE messages DISABLE TRIGGER messages_usage_added",
    ),
    ("no_trigrams", "without the trigram index (0010)", "DROP INDEX messages_content_trigrams"),
    ("no_tsvector_index", "without the tsvector index (0010)", "DROP INDEX messages_search_vector"),
    (
        "no_tsvector",
        "without the generated tsvector column (0010)",
        "ALTER TABLE messages DROP COLUMN search_vector",
    ),
]


async def batched_copy(conn: asyncpg.Connection, scratch: Path, columns: list[str]) -> float:
    """Seconds PostgreSQL takes to COPY the stored message rows in the importer's batches (whole
    conversations, about BATCH_MESSAGES messages, one transaction and COPY each), each from a
    binary file: the import's floor, with the same statements' worth of trigger work."""
    sizes = await conn.fetch(
        "SELECT conversation_id, count(*) AS n FROM messages GROUP BY 1 ORDER BY 1"
    )
    groups: list[list[Any]] = [[]]
    held = 0
    for row in sizes:
        if held >= BATCH_MESSAGES:
            groups.append([])
            held = 0
        groups[-1].append(row["conversation_id"])
        held += row["n"]
    files = []
    for n, group in enumerate(groups):
        files.append(scratch / f"batch-{n}.copy")
        await conn.copy_from_query(
            f"SELECT {', '.join(columns)} FROM messages WHERE conversation_id = ANY($1::uuid[]) "
            "ORDER BY conversation_id, seq",
            group,
            output=files[-1],
            format="binary",
        )
    await conn.execute("TRUNCATE messages, conversation_events")
    await conn.execute("CHECKPOINT")
    started = time.monotonic()
    for path in files:
        async with conn.transaction():
            await conn.copy_to_table("messages", source=path, columns=columns, format="binary")
    seconds = time.monotonic() - started
    for path in files:
        path.unlink()
    return seconds


async def copy_costs(url: str, scratch: Path) -> dict[str, float]:
    """Seconds PostgreSQL's COPY takes to load the stored message rows (binary, from a file),
    for each step of COPY_STEPS. Destroys the messages table's triggers and indexes: last."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = scratch / "messages.copy"
        untokened = scratch / "messages-untokened.copy"
        columns = [
            name
            for (name,) in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'messages'::regclass "
                "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
            )
        ]
        without_tokens = [name for name in columns if name != "tokens"]
        await conn.copy_from_table("messages", output=rows, columns=columns, format="binary")
        await conn.copy_from_table(
            "messages", output=untokened, columns=without_tokens, format="binary"
        )
        seconds = {"batched": await batched_copy(conn, scratch, columns)}
        print(f"bench: COPY batched {seconds['batched']:.1f} s", flush=True)
        for key, _, change in COPY_STEPS:
            if change is not None:
                await conn.execute(change)
            await conn.execute("TRUNCATE messages, conversation_events")
            await conn.execute("CHECKPOINT")
            source, names = (
                (untokened, without_tokens) if key == "tokens_trigger" else (rows, columns)
            )
            started = time.monotonic()
            await conn.copy_to_table("messages", source=source, columns=names, format="binary")
            seconds[key] = time.monotonic() - started
            print(f"bench: COPY {key} {seconds[key]:.1f} s", flush=True)
        return seconds
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000, help="per session")
    args = parser.parse_args(argv)
    total = args.sessions * args.messages
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        migrations.apply(url)
        store = scratch / "store.db"
        print(f"bench: writing {total:,} messages to {store}", flush=True)
        make_store(store, args.sessions, args.messages)
        env = {**os.environ, "DATABASE_URL": url}
        first, peak_mib, summary = timed([CHATKEEP, "import", "sqlite", str(store)], env)
        print(f"bench: import {first:.1f} s, peak RSS {peak_mib:.0f} MiB: {summary}", flush=True)
        rerun, _, _ = timed([CHATKEEP, "import", "sqlite", str(store)], env)
        exported, export_mib, _ = timed(
            [CHATKEEP, "export", "--output", str(scratch / "dump.ndjson")], env
        )
        dump_mib = (scratch / "dump.ndjson").stat().st_size / 2**20
        print(f"bench: re-run {rerun:.1f} s, export {exported:.1f} s", flush=True)
        costs = asyncio.run(copy_costs(url, scratch))
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.imports", *(argv or sys.argv[1:])]),
        "messages": total,
        "sessions": args.sessions,
        "import_seconds": first,
        "import_peak_rss_mib": peak_mib,
        "rerun_seconds": rerun,
        "export_seconds": exported,
        "export_peak_rss_mib": export_mib,
        "export_mib": dump_mib,
        "copy_seconds": costs["floor"],
        "copy_batched_seconds": costs["batched"],
        "copy_steps": [
            {"key": key, "what": what, "seconds": costs[key]} for key, what, _ in COPY_STEPS
        ],
        "load_average": os.getloadavg(),
        "summary": summary,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
