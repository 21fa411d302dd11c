"""The context window next to the latest 50: GET .../messages?max_tokens=5000 and
GET .../messages?limit=50 on one conversation of 100 and one of 1,000,000 messages, through
the HTTP API (wrk, `chatkeep serve`) and as the bare statements (pgbench), with the buffers each
statement touches (EXPLAIN ANALYZE). Every message of the data set is 400 ASCII bytes, 100 tokens
by the estimate, so both reads return the same 50 messages.

    python -m bench.context [--seconds 10] [--repeats 5] [--sizes 100,1000000]

Measurements alternate (read, window, read, window, ...) so the machine's drift hits both alike.
Writes bench/context_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg

from bench import dataset, load, pgbench_scripts, report, run, servers

HERE = Path(__file__).parent
RESULTS = HERE / "context_results.json"
MODES = {"read": "latest 50", "window": f"max_tokens {pgbench_scripts.WINDOW_TOKENS}"}


def statement(mode: str, size: int) -> str:
    if mode == "read":
        return pgbench_scripts.read_growing(size)
    return pgbench_scripts.window_growing(size)


async def plan_of(url: str, mode: str, size: int) -> dict[str, Any]:
    """Buffers touched, rows read from messages and execution time of one run of the
    statement, warm (the second of two)."""
    conn = await asyncpg.connect(url)
    try:
        text = statement(mode, size).rstrip().rstrip(";")
        await conn.fetch(text)
        plan = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text)
    finally:
        await conn.close()
    top = json.loads(plan)[0]

    def read(node: dict[str, Any]) -> int:
        own = (
            node["Actual Rows"] * node["Actual Loops"]
            if node.get("Relation Name") == "messages"
            else 0
        )
        return own + sum(read(child) for child in node.get("Plans", []))

    return {
        "buffers": top["Plan"]["Shared Hit Blocks"] + top["Plan"]["Shared Read Blocks"],
        "message_rows_read": read(top["Plan"]),
        "execution_ms": top["Execution Time"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.context", description=__doc__)
    parser.add_argument("--sizes", default="100,1000000", help="history lengths")
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="medians are reported")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--page-cache-bytes",
        type=int,
        help="CHATKEEP_PAGE_CACHE_BYTES (0: off; the page cache answers repeated latest-50 "
        "reads, not context windows, so 0 compares the two reads' work like for like)",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    run.ensure_tools()
    started = time.time()
    shape = dataset.Shape(conversations=10, messages=10, users=2, growth=sizes)
    http: dict[str, dict[str, list[load.Result]]] = {}
    sql: dict[str, dict[str, list[load.Result]]] = {}
    plans: dict[str, dict[str, Any]] = {}
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        print(f"bench.context: loading {', '.join(f'{s:,}' for s in sizes)} messages", flush=True)
        token = dataset.populate(url, shape)
        env = {"DATABASE_URL": url, "CHATKEEP_LOG_LEVEL": "warning"}
        if args.page_cache_bytes is not None:
            env["CHATKEEP_PAGE_CACHE_BYTES"] = str(args.page_cache_bytes)
        with servers.serving(servers.chatkeep(args.workers), env, "/health/ready") as server:
            for size in sizes:
                ids_file = scratch / f"ids-{size}.txt"
                ids_file.write_text(dataset.derived_id("grow-", size) + "\n")
                for mode in MODES:
                    load.wrk(
                        server.url,
                        mode=mode,
                        ids_file=ids_file,
                        token=token,
                        users=1,
                        concurrency=1,
                        seconds=2,
                    )  # warm-up
                for _ in range(args.repeats):
                    for mode in MODES:
                        result = load.wrk(
                            server.url,
                            mode=mode,
                            ids_file=ids_file,
                            token=token,
                            users=1,
                            concurrency=1,
                            seconds=args.seconds,
                        )
                        http.setdefault(f"{size}", {}).setdefault(mode, []).append(result)
                print(
                    f"  http {size:,}: "
                    + ", ".join(
                        f"{MODES[m]} {load.median_result(r)}" for m, r in http[f"{size}"].items()
                    ),
                    flush=True,
                )
        for size in sizes:
            for _ in range(args.repeats):
                for mode in MODES:
                    script = pgbench_scripts.write(scratch, f"{mode}-{size}", statement(mode, size))
                    result = load.pgbench(
                        run.pgbench_connection(url), script, concurrency=1, seconds=args.seconds
                    )
                    sql.setdefault(f"{size}", {}).setdefault(mode, []).append(result)
            plans[f"{size}"] = {mode: asyncio.run(plan_of(url, mode, size)) for mode in MODES}
            print(
                f"  sql {size:,}: "
                + ", ".join(
                    f"{MODES[m]} {load.median_result(r)}" for m, r in sql[f"{size}"].items()
                )
                + f"; plans {plans[f'{size}']}",
                flush=True,
            )

    RESULTS.write_text(
        json.dumps(
            {
                "command": " ".join(["python -m bench.context", *(argv or sys.argv[1:])]),
                "sizes": sizes,
                "seconds": args.seconds,
                "repeats": args.repeats,
                "workers": args.workers,
                "max_tokens": pgbench_scripts.WINDOW_TOKENS,
                "http": load.summarised(http),
                "sql": load.summarised(sql),
                "plans": plans,
                "machine": report.machine(),
                "load_average": os.getloadavg(),
                "total_seconds": time.time() - started,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"bench.context: wrote {RESULTS}")
    return 0


def spread(rates: list[float]) -> float:
    """Half the range of the rates, relative to their median."""
    return (max(rates) - min(rates)) / 2 / median(rates)


if __name__ == "__main__":
    sys.exit(main())
