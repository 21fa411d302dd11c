"""Turns on their own (python -m bench.turns, about two minutes): what an LLM app does per turn,
a 2-message append followed by a read of the latest 50, back to back on one keep-alive
connection per simulated client, at c=1 and c=16, through chatkeep and through the bare handler
(bench/bare_asgi.py), and the same statements under pgbench (the floor: one pgbench
transaction is a whole turn). Writes turns_results.json (p50 and p99 of the turn and of each
request) for the report's "Turns" section.

The load generator is a few lines of asyncio over raw HTTP/1.1 rather than httpx, so that its
own cost (tens of microseconds a request) stays small next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from bench import dataset, load, pgbench_scripts, servers
from bench.load import _percentile

HERE = Path(__file__).parent
CONCURRENCY = (1, 16)
TURN_BODY = json.dumps(
    {
        "messages": [
            {
                "role": role,
                "content": "benchmark text " * 26,
                "metadata": {"citations": [{"url": f"https://example.com/{i}"}]},
            }
            for i, role in enumerate(("user", "assistant"), start=1)
        ]
    }
).encode()


@dataclass(frozen=True)
class TurnResult:
    concurrency: int
    turns_per_second: float
    turn_p50_ms: float
    turn_p99_ms: float
    append_p50_ms: float
    read_p50_ms: float
    errors: int


class Connection:
    """One keep-alive HTTP/1.1 connection; a request returns the response's status."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def request(self, head: bytes, body: bytes = b"") -> int:
        self.writer.write(head + body)
        status = int((await self.reader.readline()).split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if chunked:
            while size := int((await self.reader.readline()).strip(), 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readline()
        else:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def _heads(host: str, token: str, conversation_id: str) -> tuple[bytes, bytes]:
    path = f"/v1/conversations/{conversation_id}/messages"
    common = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
    append = (
        f"POST {path} HTTP/1.1\r\n{common}Content-Type: application/json\r\n"
        f"Content-Length: {len(TURN_BODY)}\r\n\r\n"
    ).encode()
    read = f"GET {path}?limit=50 HTTP/1.1\r\n{common}\r\n".encode()
    return append, read


async def _client(
    url: str, token: str, ids: list[str], deadline: float, samples: list[tuple[float, float]]
) -> int:
    """Turns until the deadline; appends (append ms, read ms) per turn; returns the errors."""
    conn = await Connection.open(url)
    host = urlsplit(url).netloc
    errors = 0
    try:
        while time.perf_counter() < deadline:
            append, read = _heads(host, token, random.choice(ids))  # noqa: S311 (load, not keys)
            started = time.perf_counter()
            errors += await conn.request(append, TURN_BODY) != 201
            appended = time.perf_counter()
            errors += await conn.request(read) != 200
            samples.append((appended - started, time.perf_counter() - appended))
    finally:
        conn.close()
    return errors


async def _run(
    url: str, token: str, ids: list[str], concurrency: int, seconds: float
) -> TurnResult:
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    deadline = started + seconds
    errors = await asyncio.gather(
        *(_client(url, token, ids, deadline, samples) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    turns = sorted(a + r for a, r in samples)
    appends = sorted(a for a, _ in samples)
    reads = sorted(r for _, r in samples)
    return TurnResult(
        concurrency=concurrency,
        turns_per_second=len(samples) / elapsed,
        turn_p50_ms=_percentile(turns, 0.50) * 1000,
        turn_p99_ms=_percentile(turns, 0.99) * 1000,
        append_p50_ms=_percentile(appends, 0.50) * 1000,
        read_p50_ms=_percentile(reads, 0.50) * 1000,
        errors=sum(errors),
    )


def measure(
    url: str, token: str, ids: list[str], *, concurrency: int, seconds: float, warmup: float = 1
) -> TurnResult:
    asyncio.run(_run(url, token, ids, concurrency, warmup))
    return asyncio.run(_run(url, token, ids, concurrency, seconds))


async def _set_synchronous_commit(url: str, value: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ALTER DATABASE {dataset.DATABASE} SET synchronous_commit = {value}")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turns", description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--synchronous-commit",
        default="on",
        choices=("on", "off"),
        help="off: what a turn costs without waiting for its commit's WAL flush (fsync)",
    )
    args = parser.parse_args(argv)
    shape = dataset.Shape(args.conversations, args.messages, 100, [])
    with dataset.server(os.environ.get("DATABASE_URL")) as url:
        token = dataset.populate(url, shape)
        asyncio.run(_set_synchronous_commit(url, args.synchronous_commit))
        ids = dataset.conversation_ids(shape)
        env = {"DATABASE_URL": url, "CHATKEEP_LOG_LEVEL": "warning"}
        results: dict[str, list[dict[str, float]]] = {}
        for name, command, probe in (
            ("chatkeep", servers.chatkeep(args.workers), "/health/ready"),
            ("bare", servers.bare(args.workers), servers.BARE_READY),
        ):
            with servers.serving(command, env, probe) as server:
                results[name] = []
                for concurrency in CONCURRENCY:
                    turn = measure(
                        server.url, token, ids, concurrency=concurrency, seconds=args.seconds
                    )
                    results[name].append(asdict(turn))
                    print(f"  {name} c{concurrency}: {turn}", flush=True)
        with tempfile.TemporaryDirectory(prefix="chatkeep-turns-") as scratch:
            script = pgbench_scripts.write(Path(scratch), "turn", pgbench_scripts.turn(len(ids)))
            results["pgbench"] = []
            for concurrency in CONCURRENCY:
                floor = load.pgbench([url], script, concurrency=concurrency, seconds=args.seconds)
                results["pgbench"].append({"concurrency": concurrency, **asdict(floor)})
                print(f"  pgbench c{concurrency}: {floor}", flush=True)
    run = {
        "synchronous_commit": args.synchronous_commit,
        **results,
        "load_average": os.getloadavg(),
    }
    suffix = "" if args.synchronous_commit == "on" else "_async_commit"
    (HERE / f"turns_results{suffix}.json").write_text(json.dumps(run, indent=2) + "\n")
    return 0


def section(out: Path) -> str:
    """The Turns section of REPORT.md, when `python -m bench.turns` has been run."""
    path = out / "turns_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    floors = {row["concurrency"]: row for row in result["pgbench"]}
    bare = {row["concurrency"]: row for row in result["bare"]}
    rows = []
    for name in ("chatkeep", "bare"):
        for row in result[name]:
            floor = floors[row["concurrency"]]["p50_ms"]
            rows.append(
                f"| {name} | {row['concurrency']} | {row['turns_per_second']:,.0f} | "
                f"{row['turn_p50_ms']:.2f} | {row['turn_p99_ms']:.1f} | "
                f"{row['append_p50_ms']:.2f} | {row['read_p50_ms']:.2f} | "
                f"{row['turn_p50_ms'] / floor:.1f}x | "
                f"{row['turn_p50_ms'] / bare[row['concurrency']]['turn_p50_ms']:.2f}x |"
            )
    for row in result["pgbench"]:
        rows.append(
            f"| pgbench | {row['concurrency']} | {row['rate']:,.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.1f} | - | - | 1.0x | - |"
        )
    table = "\n".join(rows)
    load_average = ", ".join(f"{value:.1f}" for value in result["load_average"])
    return f"""## Turns
Generated by `python -m bench.turns` (synchronous_commit {result["synchronous_commit"]}): a
2-message append then the latest 50 of the same conversation, back to back per client on one
keep-alive connection, chatkeep and the bare handler with 2 workers each; pgbench runs the
turn's statements (the append's transaction, then the page's statement) as one transaction, so
its latency is a whole turn without HTTP. Times in ms; "x pgbench" and "x bare" compare turn
p50s. Load average at the end: {load_average}.

| target | c | turns/s | turn p50 | turn p99 | append p50 | read p50 | x pgbench | x bare |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{table}
"""


if __name__ == "__main__":
    sys.exit(main())
