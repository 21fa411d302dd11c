"""What read replicas cost and give, per call: a throwaway primary with one streaming replica
(tests/replicas.py), and two `chatkeep serve --workers 1` on the same database, one without
replicas and one reading from the replica. One call at a time on a kept-alive connection, each
call made on both servers back to back:

- append 1 message: the write's consistency token costs one more round trip to the primary;
- latest 50 without a token: from the primary, against from the replica;
- latest 50 sent right after an append with its token: the primary, or whichever server has
  replayed it (the replica when the poll or one question shows it has).

    python -m bench.replicas [--calls 300] [--rounds 3]

Writes bench/replicas_results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from statistics import median

import httpx

from service.core.principal import ALL_PERMISSIONS
from service.db import migrations
from service.db.embedded import NON_DURABLE, EmbeddedPostgres
from tests.helpers import create_key
from tests.live import live_service
from tests.replicas import StreamingReplica

HERE = Path(__file__).parent
RESULTS = HERE / "replicas_results.json"
HEADER = "Chatkeep-Consistency"
CONTENT = "The quick brown fox jumps over the lazy dog. " * 9


def measure(
    calls: int, rounds: int, plain: str, replicated: str, key: str
) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {key}"}
    conversation = str(uuid.uuid4())
    path = f"/v1/conversations/{conversation}/messages"
    body = {"messages": [{"role": "user", "content": CONTENT}]}
    timings: dict[str, list[float]] = {}
    with httpx.Client(headers=headers, timeout=30) as http:
        for _ in range(60):
            http.post(plain + path, json=body).raise_for_status()

        def timed(name: str, send: Callable[[], httpx.Response]) -> httpx.Response:
            started = time.perf_counter()
            response = send()
            timings.setdefault(name, []).append((time.perf_counter() - started) * 1e6)
            response.raise_for_status()
            return response

        for _ in range(rounds):
            for _ in range(calls):
                timed("append, no replicas", lambda: http.post(plain + path, json=body))
                written = timed("append, replicas", lambda: http.post(replicated + path, json=body))
                timed("latest 50, primary", lambda: http.get(plain + path))
                timed("latest 50, replica", lambda: http.get(replicated + path))
                token = {HEADER: written.headers[HEADER]}

                def read_with_token(token: dict[str, str] = token) -> httpx.Response:
                    return http.get(replicated + path, headers=token)

                timed("latest 50 with the token, right after", read_with_token)
    return {
        name: {"p50_us": median(values), "p99_us": sorted(values)[int(len(values) * 0.99)]}
        for name, values in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="chatkeep-bench-replicas-"))
    directory.chmod(0o755)
    primary = EmbeddedPostgres(directory, server_options=NON_DURABLE, tcp=True)
    url = primary.start()
    replica = None
    try:
        migrations.apply(url)
        key = asyncio.run(create_key(url, ALL_PERMISSIONS))
        replica = StreamingReplica.start(primary)
        on_replica = replica.same_database_on_replica(url)
        quiet = {"log_level": "warning"}
        with (
            live_service(url, **quiet) as (plain, _),
            live_service(url, replica_urls=on_replica, **quiet) as (replicated, _),
        ):
            measured = measure(options.calls, options.rounds, plain, replicated, key)
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()
        shutil.rmtree(directory, ignore_errors=True)
    result = {
        "command": "python -m bench.replicas " + " ".join(sys.argv[1:]),
        "calls": options.calls,
        "rounds": options.rounds,
        "load_average": os.getloadavg(),
        "measured": measured,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for name, row in measured.items():
        print(f"{name:40} p50 {row['p50_us']:8,.0f} µs   p99 {row['p99_us']:8,.0f} µs")


if __name__ == "__main__":
    main()
