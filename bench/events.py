"""Event delivery (README "Live updates"): from an append's 201 to the event at a subscriber,
p50 and p99, with 1, 100 and 1,000 subscribers per worker (two workers: twice as many streams);
the appends' own rate while every append fans out, next to the rate without subscribers; and
the memory an idle subscriber costs a worker.

    python -m bench.events [--subscribers 1,100,1000] [--appends 100] [--seconds 10] [--repeats 4]

Subscribers are raw sockets that only look for each event's `id:` line, so the client (on the
same machine as the server and PostgreSQL) costs as little as it can. An event is delivered when
the subscriber's kernel received it (the socket's timestamp); when the one client process got
round to reading it is reported beside. Writes
bench/events_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import re
import resource
import socket
import struct
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
WARM_UP_SECONDS = 5
# Appends a second while latency is measured: a busy conversation (a reply streamed in).
PACE_SECONDS = 0.2
EVENT_ID = re.compile(rb"id: (\d+)\n")
# Per (conversation, event id): (received by the kernel, read by the client), per subscriber.
Arrivals = dict[tuple[str, int], list[tuple[float, float]]]


# Linux's SO_TIMESTAMPNS (asm-generic; Python's socket module does not name it): each read
# also gives the time the kernel received the data, as a struct timespec.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")


class Stream:
    """One subscriber's socket: records when each event id arrives. A bare socket read on the
    loop's readiness callback (no transport, no task per stream): the client shares the
    server's two cores, so it should cost as little per event as it can.

    Each arrival is recorded twice: when the kernel received it (the socket's timestamp: the
    event was at the subscriber; on loopback, taken during the server's write) and when this
    process read it (later by however long the client took to get to this socket among the
    others). A read of several writes at once carries the last one's time: late, never early."""

    def __init__(self, arrivals: Arrivals, conversation_id: str, sock: socket.socket) -> None:
        self._arrivals = arrivals
        self._conversation_id = conversation_id
        self._sock = sock
        self._tail = b""
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def readable(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(65536, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # reset: ended as a close would
        if not data:
            # The server ended the stream: stop watching the socket, which would stay readable.
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            if not self.head.done():
                self.head.set_exception(ConnectionError("the stream ended before its head"))
            return
        read = time.time()
        received = read
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = TIMESPEC.unpack(value[: TIMESPEC.size])
                received = seconds + nanoseconds / 1e9
        if not self.head.done():
            self.head.set_result(data)
            return
        text = self._tail + data
        for match in EVENT_ID.finditer(text):
            self._arrivals[(self._conversation_id, int(match[1]))].append((received, read))
        # An id line split over two reads is found in the next one.
        self._tail = text[-32:] if not text.endswith(b"\n\n") else b""


class Subscribers:
    """Streams of conversations, recording when each event id arrives on each."""

    def __init__(self, base: str, key: str) -> None:
        parts = urlsplit(base)
        self._address = parts.hostname or "127.0.0.1", parts.port or 80
        self._key = key
        self.arrivals: Arrivals = defaultdict(list)
        self._sockets: list[socket.socket] = []

    async def add(self, conversation_id: str) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sockets.append(sock)
        await loop.sock_connect(sock, self._address)
        await loop.sock_sendall(
            sock,
            f"GET /v1/conversations/{conversation_id}/events HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {self._key}\r\nAccept: text/event-stream\r\n\r\n".encode(),
        )
        stream = Stream(self.arrivals, conversation_id, sock)
        loop.add_reader(sock.fileno(), stream.readable)
        head = await asyncio.wait_for(stream.head, 30)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()


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
        subscribers.close()
        pipe.send(arrivals)

    # The arrivals grow to hundreds of thousands of lists: a collection of the oldest
    # generation would stall the reading for tens of milliseconds and show as late events.
    gc.disable()
    uvloop.run(follow())


class Following:
    """The subscribers' process: its pid, and their arrivals once the block has ended."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.arrivals: Arrivals = {}


@contextmanager
def subscribed(base: str, key: str, conversations: list[str], count: int) -> Iterator[Following]:
    """``count`` subscribers in another process (so reading them does not slow the writers in
    this one). Both processes read the same clock, the kernel's wall clock (the sockets'
    timestamps are on it)."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_subscribe, args=(base, key, conversations, count, theirs)
    )
    process.start()
    assert process.pid is not None
    following = Following(process.pid)
    try:
        while not ours.poll(1):
            if not process.is_alive():
                raise RuntimeError("the subscribers' process died")
        if ours.recv() != "ready":
            raise RuntimeError("the subscribers did not start")
        yield following
    finally:
        ours.send("stop")
        following.arrivals.update(ours.recv())
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
    return sum(
        int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
        for pid in server.worker_pids()
    )


def machine_busy() -> tuple[int, int]:
    """(busy, all) clock ticks of every core so far, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def delays(answered: dict[tuple[str, int], float], arrivals: Arrivals, which: int) -> list[float]:
    """Seconds from each append's 201 to each arrival of its event, by (conversation, seq):
    at the subscriber's socket (``which`` 0) or read by the client (1)."""
    return [
        times[which] - answered[event]
        for event, arrived in arrivals.items()
        if event in answered
        for times in arrived
    ]


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
        answered: dict[tuple[str, int], float] = {}
        streams = per_worker * WORKERS
        with subscribed(server.url, key, [conversation_id], streams) as following:
            await asyncio.sleep(2)
            idle = rss_mib(server)
            for _ in range(appends):
                seq = await append(client, conversation_id)
                answered[(conversation_id, seq)] = time.time()
                await asyncio.sleep(PACE_SECONDS)
            await asyncio.sleep(2)
    latencies = delays(answered, following.arrivals, 0)
    return {
        "subscribers_per_worker": per_worker,
        "streams": streams,
        "appends": appends,
        "appends_per_second": 1 / PACE_SECONDS,
        "delivered": len(latencies),
        "expected": len(answered) * streams,
        **percentiles(latencies),
        # The same deliveries when the one client process got round to reading each of its
        # thousands of sockets: the client's own queue on the shared cores, added.
        "read_by_client": percentiles(delays(answered, following.arrivals, 1)),
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
        answered: dict[tuple[str, int], float] = {}

        async def writer(conversation_id: str, end: float) -> None:
            while time.perf_counter() < end:
                seq = await append(client, conversation_id)
                answered[(conversation_id, seq)] = time.time()

        with subscribed(server.url, key, conversations, per_worker * WORKERS) as following:
            await asyncio.sleep(1)
            pids = server.worker_pids()
            cpu_before = servers.cpu_seconds(pids), servers.cpu_seconds([following.pid])
            machine_before = machine_busy()
            started = time.perf_counter()
            await asyncio.gather(*(writer(c, started + seconds) for c in conversations))
            elapsed = time.perf_counter() - started
            # The CPU of the run only, not of the last events' delivery below.
            workers_cpu = servers.cpu_seconds(pids) - cpu_before[0]
            client_cpu = servers.cpu_seconds([following.pid]) - cpu_before[1]
            machine_after = machine_busy()
            # The events of the run's last appends, still on their way, are delivered.
            await asyncio.sleep(2)
    delivered = sum(len(times) for times in following.arrivals.values())
    latencies = delays(answered, following.arrivals, 0)
    return {
        "subscribers_per_worker": per_worker,
        "seconds": elapsed,
        "appends_per_second": len(answered) / elapsed,
        "events_delivered": delivered,
        # From each append's 201 to its event at each subscriber, while the writers run flat out.
        "delivery_under_load": percentiles(latencies) if latencies else None,
        # CPU (both workers together; the subscribers' process) per second of the run.
        "workers_cpu_share": workers_cpu / elapsed,
        "client_cpu_share": client_cpu / elapsed,
        # How busy the machine's cores were (1.0: all of them, all the time).
        "machine_busy": (machine_after[0] - machine_before[0])
        / (machine_after[1] - machine_before[1]),
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


def balanced(pair: tuple[int, int], repeats: int) -> list[int]:
    """``repeats`` of each of ``pair``, in the order A B B A A B ...: a drift cancels out."""
    return [pair[(i + i // 2) % 2] for i in range(2 * repeats)]


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
    parser.add_argument(
        "--repeats", type=int, default=4, help="rate measurements without and with subscribers"
    )
    parser.add_argument(
        "--coalesce-ms",
        default="50:1000,50:0,0:0,250:0",
        help="CHATKEEP_EVENTS_COALESCE_MS:CHATKEEP_EVENTS_BUSY_COALESCE_MS pairs, comma-separated: "
        "the appends' rate is measured under each (without and with subscribers, in turn), the "
        "delivery latency under the first",
    )
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
        results["delivery"] = []
        results["rate"] = []
        for run, pair in enumerate(args.coalesce_ms.split(",")):
            coalesce_ms, busy_coalesce_ms = (int(value) for value in pair.split(":"))
            coalescing = {"coalesce_ms": coalesce_ms, "busy_coalesce_ms": busy_coalesce_ms}
            env = {
                "DATABASE_URL": url,
                "CHATKEEP_LOG_LEVEL": "warning",
                "CHATKEEP_KEY_REQUESTS_PER_MINUTE": "0",
                "CHATKEEP_EVENTS_COALESCE_MS": str(coalesce_ms),
                "CHATKEEP_EVENTS_BUSY_COALESCE_MS": str(busy_coalesce_ms),
            }
            with servers.serving(servers.chatkeep(WORKERS), env, "/health/ready") as server:
                for count in counts if run == 0 else ():
                    row = uvloop.run(delivery(server, key, count, args.appends))
                    row.update(coalescing)
                    print(f"bench: delivery {row}", flush=True)
                    results["delivery"].append(row)
                # Not counted: a fresh server's first seconds of appends run slower (its
                # connections prepare their statements, caches fill).
                uvloop.run(append_rate(server, key, 0, WARM_UP_SECONDS))
                # Without and with subscribers in turn, every other pair reversed (0 N N 0 0 N
                # N 0): the rate without subscribers moves by 10 to 25% from run to run and
                # drifts over a server's life, so one of each would compare noise and drift.
                for count in balanced((0, counts[-1]), args.repeats):
                    row = uvloop.run(append_rate(server, key, count, args.seconds))
                    row.update(coalescing)
                    print(f"bench: append rate {row}", flush=True)
                    results["rate"].append(row)
    results["load_average"] = os.getloadavg()
    results["machine_note"] = (
        "One 2-core machine for the server, PostgreSQL and the clients; nothing else ran "
        "(load average below 0.5 before the run)"
    )
    results["total_seconds"] = time.time() - started
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
