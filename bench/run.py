"""One command for the whole benchmark: python -m bench.run [--quick] [options].

Starts (or uses DATABASE_URL's server for) a fresh database, loads the data set, runs every
workload against chatkeep (2 uvicorn workers, authenticated with an API key), against the bare
ASGI handler (bench/bare_asgi.py) and as pgbench on PostgreSQL itself, then writes
bench/results.json, bench/REPORT.md and the plots.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import dataset, load, pgbench_scripts, report, servers
from bench.load import Result

HERE = Path(__file__).parent
READ_CONCURRENCY = [1, 16, 64]
WRITE_CONCURRENCY = 16
LIST_CONCURRENCY = 16
GROWTH_CONCURRENCY = 1
# History lengths the context window (f) is read at, when the run has them.
WINDOW_SIZES = (100, 1_000_000)


@dataclass(frozen=True)
class Workload:
    name: str  # e.g. "read c16"
    mode: str  # the wrk script's mode
    concurrency: int
    pgbench_script: str
    ids: list[str]


def workloads(shape: dataset.Shape) -> tuple[list[Workload], list[Workload]]:
    """(reads, writes): writes run last, so that reads see the data set as generated."""
    ids = dataset.conversation_ids(shape)
    reads = [
        Workload(f"a: latest 50, c{c}", "read", c, pgbench_scripts.read_random(len(ids)), ids)
        for c in READ_CONCURRENCY
    ]
    reads.append(
        Workload(
            f"c: list 20, c{LIST_CONCURRENCY}",
            "list",
            LIST_CONCURRENCY,
            pgbench_scripts.list_for_user(shape.users),
            ids,
        )
    )
    reads += [
        Workload(
            f"d: latest 50 of {size:,}, c{GROWTH_CONCURRENCY}",
            "read",
            GROWTH_CONCURRENCY,
            pgbench_scripts.read_growing(size),
            [dataset.derived_id("grow-", size)],
        )
        for size in shape.growth
    ]
    # The context window next to the latest 50: the same 50 messages, chosen by their tokens.
    reads += [
        Workload(
            f"f: max_tokens {pgbench_scripts.WINDOW_TOKENS} of {size:,}, c{GROWTH_CONCURRENCY}",
            "window",
            GROWTH_CONCURRENCY,
            pgbench_scripts.window_growing(size),
            [dataset.derived_id("grow-", size)],
        )
        for size in shape.growth
        if size in WINDOW_SIZES
    ]
    writes = [
        Workload(
            f"b: append 2, c{WRITE_CONCURRENCY}",
            "append",
            WRITE_CONCURRENCY,
            pgbench_scripts.append(len(ids), 2),
            ids,
        ),
        Workload(
            f"e: append 100, c{WRITE_CONCURRENCY}",
            "batch",
            WRITE_CONCURRENCY,
            pgbench_scripts.append(len(ids), 100),
            ids,
        ),
    ]
    return reads, writes


def ensure_tools() -> None:
    """wrk and pgbench come from Debian's packages; install them when missing and root."""
    missing = [tool for tool in ("wrk", "pgbench") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"bench: install {', '.join(missing)} (Debian: apt-get install wrk postgresql)")
    packages = ["wrk" if tool == "wrk" else "postgresql-client" for tool in missing]
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True)


def pgbench_connection(url: str) -> list[str]:
    # libpq tools take the whole URL as the database name: host, port, user and password (the
    # embedded server requires one) in one argument.
    return [url]


def http_runs(
    server: servers.Server,
    chosen: list[Workload],
    args: argparse.Namespace,
    token: str,
    scratch: Path,
) -> dict[str, list[Result]]:
    results = {}
    for workload in chosen:
        ids_file = scratch / f"ids-{len(workload.ids)}-{workload.ids[0]}.txt"
        ids_file.write_text("\n".join(workload.ids) + "\n")

        measure = functools.partial(
            load.wrk,
            server.url,
            mode=workload.mode,
            ids_file=ids_file,
            token=token,
            users=args.users,
            concurrency=workload.concurrency,
        )
        measure(seconds=args.warmup)
        results[workload.name] = [measure(seconds=args.seconds) for _ in range(args.repeats)]
        print(f"  {workload.name}: {load.median_result(results[workload.name])}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="per conversation")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument(
        "--growth", default="100,1000,10000,100000,1000000", help="history lengths for (d)"
    )
    parser.add_argument("--seconds", type=float, default=10, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="medians are reported")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats, args.warmup, args.growth = 2, 1, 1, "100,10000"
    shape = dataset.Shape(
        args.conversations, args.messages, args.users, [int(n) for n in args.growth.split(",")]
    )
    ensure_tools()
    reads, writes = workloads(shape)
    results: dict[str, dict[str, list[Result]]] = {"chatkeep": {}, "bare": {}, "pgbench": {}}
    memory: dict[str, list[float]] = {}
    started = time.time()
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        print(f"bench: loading the data set into {url}", flush=True)
        loading = time.monotonic()
        token = dataset.populate(url, shape)
        load_seconds = time.monotonic() - loading
        env = {"DATABASE_URL": url, "CHATKEEP_LOG_LEVEL": "warning"}
        targets = {
            "chatkeep": (servers.chatkeep(args.workers), "/health/ready"),
            "bare": (servers.bare(args.workers), servers.BARE_READY),
        }
        for target, (command, probe) in targets.items():
            print(f"bench: {target}", flush=True)
            with servers.serving(command, env, probe) as server:
                for chosen in (reads, writes):
                    results[target].update(http_runs(server, chosen, args, token, scratch))
                memory[target] = server.worker_peak_rss_mib()
        print("bench: pgbench", flush=True)
        for workload in reads + writes:
            script = pgbench_scripts.write(scratch, "workload", workload.pgbench_script)
            results["pgbench"][workload.name] = [
                load.pgbench(
                    pgbench_connection(url),
                    script,
                    concurrency=workload.concurrency,
                    seconds=args.seconds,
                )
                for _ in range(args.repeats)
            ]
            print(f"  {workload.name}: {load.median_result(results['pgbench'][workload.name])}")
    run = {
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "shape": asdict(shape),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "workers": args.workers,
        "load_seconds": load_seconds,
        "total_seconds": time.time() - started,
        "workloads": [workload.name for workload in reads + writes],
        "results": {
            target: {name: [asdict(r) for r in runs] for name, runs in by_name.items()}
            for target, by_name in results.items()
        },
        "peak_rss_mib": memory,
        "machine": report.machine(),
    }
    (HERE / "results.json").write_text(json.dumps(run, indent=2) + "\n")
    report.write(run, HERE)
    print(f"bench: wrote {HERE / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
