"""What the Python client (chatkeep_client) costs per call, against plain httpx sending the very
same requests: over HTTP to `chatkeep serve`, one call at a time on one kept-alive connection,
and in process against a canned answer (httpx.MockTransport: no network, no server), where
nothing but the client's own work differs.

    python -m bench.client [--calls 1000] [--rounds 5]

Writes bench/client_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import httpx
import msgspec

from bench import dataset, servers
from chatkeep_client import AsyncChatkeep, Chatkeep
from chatkeep_client._sending import USER_AGENT
from service.core.principal import ALL_PERMISSIONS
from service.db import migrations
from service.history import keys

HERE = Path(__file__).parent
RESULTS = HERE / "client_results.json"
HISTORY = 200  # messages per conversation
CONVERSATIONS = 20
CONTENT = "The quick brown fox jumps over the lazy dog. " * 9  # about 400 bytes
METADATA = {"citations": [{"doc": "handbook.pdf", "page": 12}, {"doc": "faq.md", "page": 1}]}


def message(n: int) -> dict[str, Any]:
    return {
        "role": "user" if n % 2 == 0 else "assistant",
        "content": f"{n} {CONTENT}",
        "metadata": METADATA,
    }


class Workload:
    """One kind of call made both ways: ``raw`` (plain httpx) and ``client`` (chatkeep_client),
    each a callable making one call with the n-th conversation."""

    def __init__(
        self,
        name: str,
        raw: Callable[[int], object],
        client: Callable[[int], object],
    ) -> None:
        self.name, self.raw, self.client = name, raw, client


def sync_workloads(base_url: str, key: str, ids: list[str], transport: Any = None) -> Any:
    """The latest-50 read (plain httpx decoding with the standard library's json, as
    ``response.json()`` does, and with msgspec), a conversation's read and a 2-message append,
    each both ways; the clients are returned to be closed."""
    headers = {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}
    http = httpx.Client(transport=transport, timeout=30)
    ck = Chatkeep(base_url, api_key=key, http_client=httpx.Client(transport=transport, timeout=30))

    def raw_read(n: int) -> object:
        # The client's request exactly: the same query, in the same order.
        response = http.get(
            f"{base_url}/v1/conversations/{ids[n % len(ids)]}/messages",
            params={"limit": 50, "order": "asc"},
            headers=headers,
        )
        response.raise_for_status()
        return response.json()

    def raw_read_msgspec(n: int) -> object:
        # A hand-written client's fastest read: msgspec into plain dicts and lists.
        response = http.get(
            f"{base_url}/v1/conversations/{ids[n % len(ids)]}/messages",
            params={"limit": 50, "order": "asc"},
            headers=headers,
        )
        response.raise_for_status()
        return msgspec.json.decode(response.content)

    def raw_get(n: int) -> object:
        response = http.get(f"{base_url}/v1/conversations/{ids[n % len(ids)]}", headers=headers)
        response.raise_for_status()
        return response.json()

    def raw_append(n: int) -> object:
        # With ids, as the client sends them (what makes its retries safe).
        batch = [
            {**message(n), "id": str(uuid.uuid4())},
            {**message(n + 1), "id": str(uuid.uuid4())},
        ]
        response = http.post(
            f"{base_url}/v1/conversations/{ids[n % len(ids)]}/messages",
            json={"messages": batch},
            headers=headers,
        )
        response.raise_for_status()
        return response.json()

    workloads = [
        Workload(
            "latest 50 (GET .../messages?limit=50), plain httpx with response.json()",
            raw_read,
            lambda n: ck.messages.list(ids[n % len(ids)], limit=50),
        ),
        Workload(
            "latest 50, plain httpx with msgspec",
            raw_read_msgspec,
            lambda n: ck.messages.list(ids[n % len(ids)], limit=50),
        ),
        Workload(
            "a conversation (GET /v1/conversations/{id})",
            raw_get,
            lambda n: ck.conversations.get(ids[n % len(ids)]),
        ),
        Workload(
            "append 2 (POST .../messages)",
            raw_append,
            lambda n: ck.messages.append(ids[n % len(ids)], [message(n), message(n + 1)]),
        ),
    ]
    return workloads, [http, ck]


Pair = tuple[list[float], list[float]]


def paired(raw: Callable[[int], object], client: Callable[[int], object], calls: int) -> Pair:
    """µs of each call made both ways back to back, alternating which goes first, so that both
    meet the same moment's load (the machine is shared: it drifts within seconds)."""
    timings: Pair = ([], [])
    for n in range(calls):
        for index in (0, 1) if n % 2 == 0 else (1, 0):
            started = time.perf_counter()
            (raw, client)[index](n)
            timings[index].append((time.perf_counter() - started) * 1e6)
    return timings


def compare(workloads: list[Workload], calls: int, rounds: int) -> list[dict[str, Any]]:
    results = []
    for workload in workloads:
        paired(workload.raw, workload.client, calls // 10)  # warm-up: connections, caches
        rounds_ = [paired(workload.raw, workload.client, calls) for _ in range(rounds)]
        results.append(summary(workload.name, rounds_))
        print(f"  {results[-1]}", flush=True)
    return results


def summary(name: str, pairs: list[Pair]) -> dict[str, Any]:
    """Medians and p99s of every call made each way; the client's cost: the ratio of the
    medians, overall and per round (how much it moved), and the median of the per-call
    differences (each call against the plain one made next to it)."""
    raw = [us for pair in pairs for us in pair[0]]
    client = [us for pair in pairs for us in pair[1]]
    return {
        "workload": name,
        "raw_p50_us": median(raw),
        "client_p50_us": median(client),
        "raw_p99_us": sorted(raw)[int(len(raw) * 0.99)],
        "client_p99_us": sorted(client)[int(len(client) * 0.99)],
        "overhead": median(client) / median(raw) - 1,
        "round_overheads": [median(b) / median(a) - 1 for a, b in pairs],
        "difference_us": median([c - r for a, b in pairs for r, c in zip(a, b, strict=True)]),
        "calls": len(raw),
    }


async def async_read(base_url: str, key: str, ids: list[str], calls: int, rounds: int) -> Any:
    """The latest-50 read with AsyncChatkeep against httpx.AsyncClient."""
    headers = {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}
    async with (
        httpx.AsyncClient(timeout=30) as http,
        AsyncChatkeep(base_url, api_key=key) as ck,
    ):

        async def raw(n: int) -> object:
            response = await http.get(
                f"{base_url}/v1/conversations/{ids[n % len(ids)]}/messages",
                params={"limit": 50, "order": "asc"},
                headers=headers,
            )
            response.raise_for_status()
            return response.json()

        async def client(n: int) -> object:
            return await ck.messages.list(ids[n % len(ids)], limit=50)

        async def timed(count: int) -> Pair:
            """As ``paired``, awaited."""
            timings: Pair = ([], [])
            calls_: tuple[Callable[[int], Awaitable[object]], ...] = (raw, client)
            for n in range(count):
                for index in (0, 1) if n % 2 == 0 else (1, 0):
                    started = time.perf_counter()
                    await calls_[index](n)
                    timings[index].append((time.perf_counter() - started) * 1e6)
            return timings

        await timed(calls // 10)
        pairs = [await timed(calls) for _ in range(rounds)]
        return summary(
            "latest 50, async: AsyncChatkeep / httpx.AsyncClient with response.json()", pairs
        )


def canned_transport(body: bytes, etag: str) -> httpx.MockTransport:
    """Every request answered at once with the same stored answer."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=body, headers={"Content-Type": "application/json", "ETag": etag}
        )

    return httpx.MockTransport(answer)


def in_process(base_url: str, key: str, ids: list[str], calls: int, rounds: int) -> Any:
    """The latest-50 read against a canned copy of a real answer: the client's own cost."""
    response = httpx.get(
        f"{base_url}/v1/conversations/{ids[0]}/messages",
        params={"limit": 50},
        headers={"Authorization": f"Bearer {key}"},
    )
    transport = canned_transport(response.content, '"1"')
    workloads, closables = sync_workloads("http://canned", key, ids, transport)
    try:
        reads = [workload for workload in workloads if workload.name.startswith("latest 50")]
        return {"answer_bytes": len(response.content), "reads": compare(reads, calls, rounds)}
    finally:
        for closable in closables:
            closable.close()


async def _key(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return await keys.issue(conn, name="client-benchmark", permissions=ALL_PERMISSIONS)
    finally:
        await conn.close()


def load(base_url: str, key: str) -> list[str]:
    """CONVERSATIONS conversations of HISTORY messages each, stored through the API."""
    ids = []
    with Chatkeep(base_url, api_key=key) as ck:
        for _ in range(CONVERSATIONS):
            conversation = ck.conversations.create(title="bench", user_id="bench-user")
            for first in range(0, HISTORY, 100):
                ck.messages.append(conversation.id, [message(n) for n in range(first, first + 100)])
            ids.append(str(conversation.id))
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__)
    parser.add_argument("--calls", type=int, default=1000, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    started = time.time()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.client", *(argv or sys.argv[1:])]),
        "calls": args.calls,
        "rounds": args.rounds,
        "history": HISTORY,
        "conversations": CONVERSATIONS,
        "packages": {name: version(name) for name in ("httpx", "msgspec", "chatkeep-client")},
    }
    with dataset.server(os.environ.get("DATABASE_URL")) as url:
        migrations.apply(url)
        key = asyncio.run(_key(url))
        env = {"DATABASE_URL": url, "CHATKEEP_LOG_LEVEL": "warning"}
        with servers.serving(servers.chatkeep(1), env, "/health/ready") as server:
            ids = load(server.url, key)
            print("bench: over HTTP", flush=True)
            workloads, closables = sync_workloads(server.url, key, ids)
            try:
                results["http"] = compare(workloads, args.calls, args.rounds)
            finally:
                for closable in closables:
                    closable.close()
            print("bench: over HTTP, async", flush=True)
            results["http_async"] = asyncio.run(
                async_read(server.url, key, ids, args.calls, args.rounds)
            )
            print(f"  {results['http_async']}", flush=True)
            print("bench: in process", flush=True)
            results["in_process"] = in_process(server.url, key, ids, args.calls * 5, args.rounds)
    results["load_average"] = os.getloadavg()
    results["machine_note"] = (
        "the 2-core machine was shared with other engineers' work while this ran"
    )
    results["total_seconds"] = time.time() - started
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
