"""Event delivery (README "Live updates"): from an append's 201 to the event at a subscriber,
p50 and p99, with 1, 100 and 1,000 subscribers per worker (two workers: twice as many streams);
the appends' own rate while every append fans out, next to the rate without subscribers; and
the memory an idle subscriber costs a worker.

    python -m bench.events [--subscribers 1,100,1000] [--appends 200] [--seconds 10]

Subscribers are raw asyncio connections that only look for each event's `id:` line, so the
client (on the same machine as the server and PostgreSQL) costs as little as it can. Writes
bench/events_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from statistics import quantiles
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import uvloop

from bench import dataset, servers
from service.core.principal import ALL_PERMISSIONS
from service.db import migrations
from service.history import keys

HERE = Path(__file__).parent
RESULTS = HERE / "events_results.json"
WORKERS = 2
WRITERS = 8
# Appends a second while latency is measured: a busy conversation (a reply streamed in).
PACE_SECONDS = 0.2
EVENT_ID = re.compile(rb"id: (\d+)\n")


class Subscribers:
    """Streams of conversations, recording when each event id arrives on each."""

    def __init__(self, base: str, key: str) -> None:
        parts = urlsplit(base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._key = key
        self.arrivals: dict[tuple[str, int], list[float]] = defaultdict(list)
        self._tasks: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self.open = 0

    async def add(self, conversation_id: str) -> None:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        writer.write(
            f"GET /v1/conversations/{conversation_id}/events HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {self._key}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        self._writers.append(writer)
        self.open += 1
        self._tasks.append(asyncio.create_task(self._read(conversation_id, reader)))

    async def _read(self, conversation_id: str, reader: asyncio.StreamReader) -> None:
        tail = b""
        while chunk := await reader.read(65536):
            now = time.perf_counter()
            text = tail + chunk
            for match in EVENT_ID.finditer(text):
                self.arrivals[(conversation_id, int(match[1]))].append(now)
            # An id line split over two reads is found in the next one.
            tail = text[-32:] if not text.endswith(b"\n\n") else b""

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._writers.clear()
        self.open = 0
        self.arrivals.clear()


def _subscribe(base: str, key: str, conversations: list[str], count: int, pipe: Connection) -> None:
    """In a process of its own: open ``count`` streams over ``conversations``, say "ready",
    record arrivals until told to stop, then send them back."""

    async def follow() -> None:
        subscribers = Subscribers(base, key)
        for start in range(0, count, 100):
            batch = range(start, min(start + 100, count))
            await asyncio.gather(
                *(subscribers.add(conversations[index % len(conversations)]) for index in batch)
            )
        pipe.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        arrivals = dict(subscribers.arrivals)
        await subscribers.close()
        pipe.send(arrivals)

    uvloop.run(follow())


@contextmanager
def subscribed(
    base: str, key: str, conversations: list[str], count: int
) -> Iterator[dict[tuple[str, int], list[float]]]:
    """``count`` subscribers in another process (so reading them does not slow the writers in
    this one); the dict yielded holds their arrivals once the block has ended. Both processes
    read the same monotonic clock."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_subscribe, args=(base, key, conversations, count, theirs)
    )
    process.start()
    arrivals: dict[tuple[str, int], list[float]] = {}
    try:
        if ours.recv() != "ready":
            raise RuntimeError("the subscribers did not start")
        yield arrivals
    finally:
        ours.send("stop")
        arrivals.update(ours.recv())
        process.join(60)


async def append(client: httpx.AsyncClient, conversation_id: str) -> int:
    response = await client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"messages": [{"role": "user", "content": "The quick brown fox. " * 10}]},
    )
    response.raise_for_status()
    seq: int = response.json()["items"][0]["seq"]
    return seq


def rss_mib(server: servers.Server) -> float:
    total = 0.0
    for pid in servers._children(server.process.pid):
        status = Path(f"/proc/{pid}/status").read_text()
        if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            continue
        total += int(status.split("VmRSS:")[1].split()[0]) / 1024
    return total


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = quantiles(values, n=100, method="inclusive")
    return {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000, "max_ms": max(values) * 1000}


async def delivery(
    server: servers.Server, key: str, per_worker: int, appends: int
) -> dict[str, Any]:
    """Latency from 201 to each subscriber, all subscribed to one conversation."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        conversation_id = str(uuid.uuid4())
        await append(client, conversation_id)
        before = rss_mib(server)
        answered: dict[int, float] = {}
        streams = per_worker * WORKERS
        with subscribed(server.url, key, [conversation_id], streams) as arrivals:
            await asyncio.sleep(2)
            idle = rss_mib(server)
            for _ in range(appends):
                seq = await append(client, conversation_id)
                answered[seq] = time.perf_counter()
                await asyncio.sleep(PACE_SECONDS)
            await asyncio.sleep(2)
    latencies = [
        arrival - answered[seq]
        for (_, seq), times in arrivals.items()
        if seq in answered
        for arrival in times
    ]
    return {
        "subscribers_per_worker": per_worker,
        "streams": streams,
        "appends": appends,
        "appends_per_second": 1 / PACE_SECONDS,
        "delivered": len(latencies),
        "expected": len(answered) * streams,
        **percentiles(latencies),
        "idle_rss_kib_per_subscriber": (idle - before) * 1024 / streams,
    }


async def append_rate(
    server: servers.Server, key: str, per_worker: int, seconds: float
) -> dict[str, Any]:
    """Appends per second of WRITERS concurrent writers, each on its own conversation, while
    ``per_worker`` subscribers per worker (spread over those conversations) get every one."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=WRITERS)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=60, limits=limits
    ) as client:
        conversations = [str(uuid.uuid4()) for _ in range(WRITERS)]
        for conversation_id in conversations:
            await append(client, conversation_id)
        done = 0

        async def writer(conversation_id: str, end: float) -> None:
            nonlocal done
            while time.perf_counter() < end:
                await append(client, conversation_id)
                done += 1

        with subscribed(server.url, key, conversations, per_worker * WORKERS) as arrivals:
            await asyncio.sleep(1)
            started = time.perf_counter()
            await asyncio.gather(*(writer(c, started + seconds) for c in conversations))
            elapsed = time.perf_counter() - started
    delivered = sum(len(times) for times in arrivals.values())
    return {
        "subscribers_per_worker": per_worker,
        "appends_per_second": done / elapsed,
        "events_delivered": delivered,
    }


# One message appended as an append does (the conversation's counters move in the statement).
APPEND_ONE = """
WITH c AS (
    UPDATE conversations SET last_seq = last_seq + 1, message_count = message_count + 1,
                             version = version + 1, updated_at = now()
    WHERE id = $1 RETURNING last_seq
)
INSERT INTO messages (conversation_id, seq, id, role, content)
SELECT $1, last_seq, gen_random_uuid(), 'user', 'The quick brown fox. ' FROM c
"""
EVENT_TRIGGERS = ("messages_events_added",)


async def trigger_cost_us(url: str, count: int = 2000) -> dict[str, float]:
    """Median microseconds of a one-message append (its own transaction) with the event log's
    trigger, and with it disabled: what logging and notifying costs a write."""
    conn = await asyncpg.connect(url)
    try:
        conversation_id = uuid.uuid4()
        await conn.execute("INSERT INTO conversations (id) VALUES ($1)", conversation_id)
        medians = {}
        for label, state in (("with_events_us", "ENABLE"), ("without_events_us", "DISABLE")):
            for trigger in EVENT_TRIGGERS:
                await conn.execute(f"ALTER TABLE messages {state} TRIGGER {trigger}")
            timings = []
            for _ in range(count):
                started = time.perf_counter()
                await conn.execute(APPEND_ONE, conversation_id)
                timings.append((time.perf_counter() - started) * 1e6)
            medians[label] = quantiles(timings, n=2)[0]
        for trigger in EVENT_TRIGGERS:
            await conn.execute(f"ALTER TABLE messages ENABLE TRIGGER {trigger}")
        return medians
    finally:
        await conn.close()


async def _key(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return await keys.issue(conn, name="events-benchmark", permissions=ALL_PERMISSIONS)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    parser.add_argument("--subscribers", default="1,100,1000", help="per worker, comma-separated")
    parser.add_argument("--appends", type=int, default=100, help="per latency measurement")
    parser.add_argument("--seconds", type=float, default=10, help="per rate measurement")
    args = parser.parse_args(argv)
    counts = [int(count) for count in args.subscribers.split(",")]
    # Thousands of streams: the client's sockets, and the workers' (they inherit the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    started = time.time()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.events", *(argv or sys.argv[1:])]),
        "workers": WORKERS,
        "writers": WRITERS,
    }
    with dataset.server(os.environ.get("DATABASE_URL")) as url:
        migrations.apply(url)
        key = asyncio.run(_key(url))
        results["append_statement"] = asyncio.run(trigger_cost_us(url))
        print(f"bench: one append's statement {results['append_statement']}", flush=True)
        env = {
            "DATABASE_URL": url,
            "CHATKEEP_LOG_LEVEL": "warning",
            "CHATKEEP_KEY_REQUESTS_PER_MINUTE": "0",
        }
        with servers.serving(servers.chatkeep(WORKERS), env, "/health/ready") as server:
            results["delivery"] = []
            for count in counts:
                row = uvloop.run(delivery(server, key, count, args.appends))
                print(f"bench: delivery {row}", flush=True)
                results["delivery"].append(row)
            results["rate"] = []
            for count in (0, counts[-1]):
                row = uvloop.run(append_rate(server, key, count, args.seconds))
                print(f"bench: append rate {row}", flush=True)
                results["rate"].append(row)
    results["machine_note"] = (
        "One 2-core machine for the server, PostgreSQL and the clients, shared with other "
        "engineers' work while this ran (load average about 4)"
    )
    results["total_seconds"] = time.time() - started
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
