"""Running the load generators, wrk (HTTP) and pgbench (PostgreSQL itself), and reading results."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

WRK_SCRIPT = Path(__file__).with_name("wrk") / "chatkeep.lua"
WRK_RESULT = re.compile(r"^BENCH_JSON (\{.*\})$", re.MULTILINE)
PGBENCH_FAILED = re.compile(r"number of failed transactions: (\d+)")


@dataclass(frozen=True)
class Result:
    rate: float  # requests (or transactions) per second
    p50_ms: float
    p99_ms: float
    errors: int


def threads_for(concurrency: int) -> int:
    return min(concurrency, 2)


def wrk(
    url: str, *, mode: str, ids_file: Path, token: str, users: int, concurrency: int, seconds: float
) -> Result:
    command = [
        "wrk",
        f"-t{threads_for(concurrency)}",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        mode,
        str(ids_file),
        token,
        str(users),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = WRK_RESULT.search(output)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    data = json.loads(found[1])
    return Result(
        rate=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
    )


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def pgbench(connection: list[str], script: Path, *, concurrency: int, seconds: float) -> Result:
    """``connection``: pgbench's connection arguments (the database URL)."""
    with tempfile.TemporaryDirectory(prefix="chatkeep-pgbench-") as logs:
        command = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-f",
            str(script),
            "-c",
            str(concurrency),
            "-j",
            str(threads_for(concurrency)),
            "-T",
            str(max(1, round(seconds))),
            "-l",
            f"--log-prefix={logs}/tx",
            *connection,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        latencies_us = sorted(
            float(line.split()[2])
            for log in Path(logs).glob("tx*")
            for line in log.read_text().splitlines()
        )
    if done.returncode != 0 or not latencies_us:
        raise RuntimeError(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    failed = PGBENCH_FAILED.search(done.stdout)
    duration = max(1, round(seconds))
    return Result(
        rate=len(latencies_us) / duration,
        p50_ms=_percentile(latencies_us, 0.50) / 1000,
        p99_ms=_percentile(latencies_us, 0.99) / 1000,
        errors=int(failed[1]) if failed else 0,
    )


def median_result(results: list[Result]) -> Result:
    return Result(
        rate=median(result.rate for result in results),
        p50_ms=median(result.p50_ms for result in results),
        p99_ms=median(result.p99_ms for result in results),
        errors=sum(result.errors for result in results),
    )


def summarised(runs: dict[str, dict[str, list[Result]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Repeated measurements by two keys (say server, workload) as a results file keeps them:
    the median of each, and every run's rate (the report's spread)."""
    return {
        outer: {
            inner: {
                "median": asdict(median_result(results)),
                "rates": [result.rate for result in results],
            }
            for inner, results in by_inner.items()
        }
        for outer, by_inner in runs.items()
    }
