"""Conditional and cached reads (issue 18, aims 1 and 6): 50-message pages at c=16 through
`chatkeep serve --workers 2` with the page cache on, with it off, as the service was before
the cache (`--baseline`, a commit), and through the bare handler (bench/bare_asgi.py), on
workloads where no read repeats and where half of them do (bench/wrk/page_cache.lua); then each
server's peak RSS per worker, after a run that has filled the cache.

    python -m bench.page_cache [--seconds 8] [--repeats 3] [--baseline cca14ce]

Each repeat starts every server once, in order, so the machine's drift hits all alike.
Writes bench/page_cache_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict
from io import BytesIO
from pathlib import Path
from typing import Any

from bench import dataset, load, run, servers
from bench.observability import workers_cpu_seconds

HERE = Path(__file__).parent
RESULTS = HERE / "page_cache_results.json"
SCRIPT = HERE / "wrk" / "page_cache.lua"
SHAPE = dataset.Shape(conversations=1000, messages=200, users=100, growth=[])
CONCURRENCY = 16
WORKERS = 2
# Conversations whose latest page the repeated reads go to: their pages fit in the cache.
HOT = 100
# Share of reads that read a page again -> workload name.
WORKLOADS = {"none repeat": 0.0, "half repeat": 0.5, "all repeat": 1.0}
QUIET = {"CHATKEEP_LOG_LEVEL": "warning", "CHATKEEP_ACCESS_LOG": "false"}


def wrk(url: str, ids_file: Path, token: str, share: float, seconds: float) -> load.Result:
    command = [
        "wrk",
        f"-t{load.threads_for(CONCURRENCY)}",
        f"-c{CONCURRENCY}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(ids_file),
        token,
        str(share),
        str(HOT),
        str(SHAPE.messages),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = load.WRK_RESULT.search(output)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    data = json.loads(found[1])
    return load.Result(
        rate=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
    )


def checkout(commit: str, into: Path) -> Path:
    """The service as it was at ``commit`` (git archive: the repository is left as it is)."""
    archive = subprocess.run(
        ["git", "archive", commit, "service", "sql", "migrations"],
        capture_output=True,
        check=True,
        cwd=HERE.parent,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def targets(baseline: Path | None) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (command, environment, readiness probe)."""
    chatkeep = servers.chatkeep(WORKERS)
    found = {
        "cache on": (chatkeep, QUIET, "/health/ready"),
        "cache off": (chatkeep, {**QUIET, "CHATKEEP_PAGE_CACHE_BYTES": "0"}, "/health/ready"),
        "bare": (servers.bare(WORKERS), {}, servers.BARE_READY),
    }
    if baseline is not None:
        # Its `service` package comes first on the path, ahead of the installed one.
        found["before the cache"] = (
            chatkeep,
            {**QUIET, "PYTHONPATH": str(baseline)},
            "/health/ready",
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_cache", description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="medians are reported")
    parser.add_argument("--baseline", help="a commit without the page cache, to compare with")
    args = parser.parse_args(argv)
    run.ensure_tools()
    started = time.time()
    results: dict[str, dict[str, list[load.Result]]] = {}
    memory: dict[str, list[list[float]]] = {}
    cpu_us: dict[str, dict[str, list[float]]] = {}
    load_average: list[list[float]] = [list(os.getloadavg())]
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        token = dataset.populate(url, SHAPE)
        ids_file = scratch / "ids.txt"
        ids_file.write_text("\n".join(dataset.conversation_ids(SHAPE)) + "\n")
        baseline = checkout(args.baseline, scratch / "baseline") if args.baseline else None
        for repeat in range(args.repeats):
            for name, (command, env, probe) in targets(baseline).items():
                with servers.serving(command, {"DATABASE_URL": url, **env}, probe) as server:
                    wrk(server.url, ids_file, token, 0.5, 2)  # warm-up
                    for workload, share in WORKLOADS.items():
                        cpu_before = workers_cpu_seconds(server)
                        result = wrk(server.url, ids_file, token, share, args.seconds)
                        used = workers_cpu_seconds(server) - cpu_before
                        results.setdefault(name, {}).setdefault(workload, []).append(result)
                        cpu_us.setdefault(name, {}).setdefault(workload, []).append(
                            used / (result.rate * args.seconds) * 1e6
                        )
                    memory.setdefault(name, []).append(server.worker_peak_rss_mib())
                load_average.append(list(os.getloadavg()))
                print(
                    f"  {name} #{repeat + 1}: "
                    + ", ".join(f"{w} {r[-1].rate:.0f}/s" for w, r in results[name].items())
                    + f"; peak RSS {memory[name][-1]}",
                    flush=True,
                )
    summary: dict[str, Any] = {
        "command": " ".join(["python -m bench.page_cache", *(argv or sys.argv[1:])]),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "workers": WORKERS,
        "concurrency": CONCURRENCY,
        "shape": asdict(SHAPE),
        "hot": HOT,
        "baseline": args.baseline,
        "results": load.summarised(results),
        "peak_rss_mib": memory,
        # Microseconds of the workers' CPU time per request: steadier than rates on a shared
        # machine, as it does not count the time a worker waits for a core.
        "cpu_us": cpu_us,
        "load_average": load_average,
        "total_seconds": time.time() - started,
    }
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"bench.page_cache: wrote {RESULTS}")
    return 0


def section(out: Path) -> str:
    """REPORT.md's "Conditional and cached reads", when `python -m bench.page_cache` has run."""
    path = out / "page_cache_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    figures = result["results"]
    bare = figures["bare"]
    names = [
        name for name in ("cache on", "cache off", "before the cache", "bare") if name in figures
    ]
    lines = [
        "## Conditional and cached reads",
        "",
        f"`{result['command']}`: 50-message pages at c={result['concurrency']} through "
        f"{result['workers']} workers, {result['shape']['conversations']:,} conversations of "
        f"{result['shape']['messages']} messages; a repeated read is the latest 50 of one of "
        f"{result['hot']} conversations, any other a page below a random seq. Medians of "
        f"{result['repeats']} runs of {result['seconds']:g} s; the ratio is to the bare handler "
        "on the same workload (it reads the page every time, whatever the query).",
        "",
        "| server | "
        + " | ".join(f"{w} req/s | / bare | p99 ms | CPU µs/req" for w in WORKLOADS)
        + " |",
        "|---|" + "---:|---:|---:|---:|" * len(WORKLOADS),
    ]
    for name in names:
        cells = []
        for workload in WORKLOADS:
            median = figures[name][workload]["median"]
            ratio = median["rate"] / bare[workload]["median"]["rate"]
            cpu = statistics.median(result["cpu_us"][name][workload])
            cells.append(
                f"{median['rate']:,.0f} | {ratio:.2f} | {median['p99_ms']:.1f} | {cpu:,.0f}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Peak RSS per worker (MiB, the most of any run): "
        + ", ".join(
            f"{name} {max(max(run) for run in result['peak_rss_mib'][name]):.0f}" for name in names
        )
        + ".",
        "",
        "Load average (1, 5, 15 min) before and after each server's runs: "
        + "; ".join("/".join(f"{v:.1f}" for v in each) for each in result["load_average"])
        + ".",
        "",
    ]
    notes = HERE / "page_cache_notes.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
