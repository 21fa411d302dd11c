"""What PgBouncer in transaction mode costs (README "Behind PgBouncer"): the latest-50 read and
the append of workloads (a) and (b), through `chatkeep serve --workers 2` on the database
directly (with and without the statement cache: CHATKEEP_POOL_MODE=transaction on the direct
URL) and through Debian's pgbouncer (1.18, pool_mode=transaction, tests/pgbouncer.py) with
CHATKEEP_POOL_MODE=transaction, whose pool then prepares no named statements: every statement
is parsed and planned at each call.

    python -m bench.pgbouncer [--seconds 8] [--repeats 3]

Each repeat runs every workload on the three servers back to back, so the machine's drift hits both
alike. Writes bench/pgbouncer_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench import dataset, load, report, run, servers
from tests import pgbouncer

HERE = Path(__file__).parent
RESULTS = HERE / "pgbouncer_results.json"
SHAPE = dataset.Shape(conversations=1000, messages=200, users=100, growth=[])
WORKERS = 2
# name -> (the wrk script's mode, concurrency): workloads (a) at c1 and c16 and (b).
WORKLOADS = {"a: latest 50, c1": ("read", 1), "a: latest 50, c16": ("read", 16)}
WORKLOADS["b: append 2, c16"] = ("append", 16)
QUIET = {"CHATKEEP_LOG_LEVEL": "warning", "CHATKEEP_ACCESS_LOG": "false"}


def ensure_pgbouncer() -> None:
    if pgbouncer.executable():
        return
    if os.geteuid() != 0:
        sys.exit("bench.pgbouncer: install pgbouncer (Debian: apt-get install pgbouncer)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "pgbouncer"], check=True)


def bouncer_for(url: str) -> pgbouncer.PgBouncer:
    parts = urlsplit(url)
    if not (parts.hostname and parts.port and parts.username):
        sys.exit(f"bench.pgbouncer: PgBouncer needs a host, port and user in {url}")
    return pgbouncer.PgBouncer(
        parts.hostname, parts.port, unquote(parts.username), unquote(parts.password or "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgbouncer", description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="medians are reported")
    args = parser.parse_args(argv)
    run.ensure_tools()
    ensure_pgbouncer()
    started = time.time()
    results: dict[str, dict[str, list[load.Result]]] = {}
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print("bench.pgbouncer: loading the data set", flush=True)
        token = dataset.populate(url, SHAPE)
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(dataset.conversation_ids(SHAPE)) + "\n")
        bouncer = bouncer_for(url)
        bouncer.start()
        through = bouncer.route(url)
        routes = {
            "direct": {"DATABASE_URL": url, **QUIET},
            # Where the cost goes: the unnamed statements alone, without the pooler's hop.
            "direct, no statement cache": {
                "DATABASE_URL": url,
                "CHATKEEP_POOL_MODE": "transaction",
                "CHATKEEP_DIRECT_DATABASE_URL": url,
                **QUIET,
            },
            "PgBouncer": {
                "DATABASE_URL": through["database_url"],
                "CHATKEEP_POOL_MODE": through["pool_mode"],
                "CHATKEEP_DIRECT_DATABASE_URL": through["direct_database_url"],
                **QUIET,
            },
        }
        try:
            command = servers.chatkeep(WORKERS)
            with contextlib.ExitStack() as stack:
                served = {
                    route: stack.enter_context(servers.serving(command, env, "/health/ready"))
                    for route, env in routes.items()
                }
                for repeat in range(args.repeats + 1):
                    for name, (mode, concurrency) in WORKLOADS.items():
                        for route, server in served.items():
                            result = load.wrk(
                                server.url,
                                mode=mode,
                                ids_file=ids_file,
                                token=token,
                                users=SHAPE.users,
                                concurrency=concurrency,
                                # The first round warms both servers up and is not kept.
                                seconds=args.seconds if repeat else 2,
                            )
                            if repeat:
                                results.setdefault(name, {}).setdefault(route, []).append(result)
                                print(f"  {name}, {route}: {result}", flush=True)
        finally:
            bouncer.stop()
    RESULTS.write_text(
        json.dumps(
            {
                "command": " ".join(["python -m bench.pgbouncer", *(argv or sys.argv[1:])]),
                "pgbouncer": version(),
                "seconds": args.seconds,
                "repeats": args.repeats,
                "workers": WORKERS,
                "results": load.summarised(results),
                "machine": report.machine(),
                "load_average": os.getloadavg(),
                "total_seconds": time.time() - started,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"bench.pgbouncer: wrote {RESULTS}")
    return 0


def version() -> str:
    binary = pgbouncer.executable() or shutil.which("pgbouncer") or "pgbouncer"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else "unknown"


def section(out: Path) -> str:
    """The PgBouncer section of REPORT.md, when `python -m bench.pgbouncer` has been run."""
    path = out / "pgbouncer_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())

    def change(by_route: dict[str, Any], route: str) -> str:
        direct = by_route["direct"]["median"]["rate"]
        return f"{by_route[route]['median']['rate'] / direct - 1:+.0%}" if direct else "-"

    rows = "\n".join(
        f"| {name} | {route} | {report.rate_cells(cell)} | {change(by_route, route)} |"
        for name, by_route in result["results"].items()
        for route, cell in by_route.items()
    )

    def share(by_route: dict[str, Any]) -> str:
        direct, uncached, pooled = (
            by_route[route]["median"]["rate"]
            for route in ("direct", "direct, no statement cache", "PgBouncer")
        )
        return f"{(direct - uncached) / (direct - pooled):.0%}" if direct > pooled else "-"

    shares = "; ".join(
        f"{name}: {share(by_route)}"
        for name, by_route in result["results"].items()
        if "direct, no statement cache" in by_route
    )
    load_average = ", ".join(f"{value:.1f}" for value in result["load_average"])
    header = "| workload | route | req/s | spread | p50 ms | p99 ms | against direct |"
    return f"""## PgBouncer
Generated by `{result["command"]}` ({result["pgbouncer"]}, `pool_mode = transaction`, on the
same machine): `chatkeep serve --workers {result["workers"]}` on the database directly; on it
directly with `CHATKEEP_POOL_MODE=transaction` ("no statement cache": each statement unnamed,
parsed and planned at every call, as behind the pooler); and through PgBouncer with
`CHATKEEP_POOL_MODE=transaction`. The middle route tells the statements' cost from the pooler's
hop. Same data set as (a) and (b) above; medians of {result["repeats"]} runs of
{result["seconds"]:g} s, the three servers measured back to back in each.

{header}
|---|---|---:|---:|---:|---:|---:|
{rows}

Most of what PgBouncer costs here is the statements, not the pooler: of the throughput lost
behind it, the share already lost on the direct connection without the statement cache is
{shares}. Each statement is parsed and planned at every call instead of once per connection
(an append runs several), and PgBouncer adds one more process on the same two cores (with
wrk, chatkeep and PostgreSQL) for each statement to cross. PgBouncer 1.21+ can keep prepared
statements in transaction mode (`max_prepared_statements`); chatkeep does not rely on it, so
that 1.18, as Debian ships it, works. The machine is shared with other work (load average
{load_average} when the run ended): figures move with it, by more than the spread of one run
suggests.
"""


if __name__ == "__main__":
    sys.exit(main())
