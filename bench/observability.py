"""What metrics and access logs cost a read: the latest 50 messages (wrk, `read` mode) through
`chatkeep serve --workers 2`, served with each of the configurations below in turn, every
server's output written to a file as a log collector would take it.

    python -m bench.observability [--seconds 8] [--repeats 3]

Each repeat starts every configuration once, in order, so the machine's drift hits all alike.
Writes bench/observability_results.json; `python -m bench.report` puts it into REPORT.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench import dataset, load, report, run, servers
from service.cli.servers import APP_FACTORY

HERE = Path(__file__).parent
RESULTS = HERE / "observability_results.json"
SHAPE = dataset.Shape(conversations=200, messages=100, users=20, growth=[])
CONCURRENCY = (1, 16)
WORKERS = 2
TOKEN = secrets.token_hex(16)
QUIET = {"CHATKEEP_LOG_LEVEL": "warning", "CHATKEEP_ACCESS_LOG": "false"}
# name -> (what it is, environment, uvicorn's own command instead of `chatkeep serve`).
# uvicorn's access log is off under both commands now (chatkeep's replaces it): its line is
# measured on its own (uvicorn_line_us).
CONFIGURATIONS: dict[str, tuple[str, dict[str, str], bool]] = {
    "none": ("no access log, no metrics (bench/run.py's set-up)", QUIET, False),
    "text": ("chatkeep's access log, text", {"CHATKEEP_LOG_LEVEL": "info"}, False),
    "json": (
        "chatkeep's access log, JSON",
        {"CHATKEEP_LOG_LEVEL": "info", "CHATKEEP_LOG_FORMAT": "json"},
        False,
    ),
    "metrics": ("metrics, no access log", {**QUIET, "CHATKEEP_METRICS_TOKEN": TOKEN}, False),
    "both": (
        "metrics and chatkeep's access log, text",
        {"CHATKEEP_LOG_LEVEL": "info", "CHATKEEP_METRICS_TOKEN": TOKEN},
        False,
    ),
}


def uvicorn_command() -> list[str]:
    """The app under uvicorn's own command and logging (its access log on at info)."""
    return [
        str(servers.BIN / "uvicorn"),
        APP_FACTORY,
        "--factory",
        "--workers",
        str(WORKERS),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


def workers_cpu_seconds(server: servers.Server) -> float:
    """User and system CPU time the server's worker processes have used so far: what a
    request costs them, whatever else the shared machine is doing meanwhile."""
    return servers.cpu_seconds(servers._children(server.process.pid))


def wrapper_costs(requests: int = 50_000) -> dict[str, float]:
    """Microseconds of CPU that service/api/observe.py's wrapper adds to one request, around
    an application that answers at once, per configuration (logs to a file, as a collector
    would read them): the part of the figures above that is the wrapper's alone."""
    import asyncio
    import logging.config

    from service.api.observe import Observe
    from service.core import logs
    from service.core.settings import settings_from_env

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def sink(message: Any) -> None:
        pass

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/conversations/0b6c/messages",
        "path_template": "/v1/conversations/{conversation_id}/messages",
        "headers": [(b"authorization", b"Bearer ck_x"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
    }
    costs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, env, plain_uvicorn) in CONFIGURATIONS.items():
            if plain_uvicorn:
                continue
            settings = settings_from_env({**env, "DATABASE_URL": "postgresql://x@127.0.0.1/x"})
            config = logs.logging_config(settings)
            config["handlers"]["stderr"] = {
                "class": "logging.FileHandler",
                "filename": str(Path(tmp) / f"{name}.log"),
                "formatter": "chatkeep",
                "filters": ["request_id"],
            }
            logging.config.dictConfig(config)
            observed = Observe(answer, settings)

            async def loop(app: Any = observed) -> float:
                started = time.process_time()
                for _ in range(requests):
                    await app(dict(scope), None, sink)
                return time.process_time() - started

            bare = asyncio.run(_bare_loop(answer, scope, sink, requests))
            costs[name] = (asyncio.run(loop()) - bare) / requests * 1e6
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    return costs


def uvicorn_line_cost(requests: int = 50_000) -> float:
    """Microseconds of CPU one line of uvicorn's own access log costs (what it wrote for every
    request before chatkeep's replaced it): the same call, arguments and logging configuration
    (uvicorn's default), written to a file."""
    import copy
    import logging.config

    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

    scope: Any = {
        "client": ("127.0.0.1", 50000),
        "method": "GET",
        "path": "/v1/conversations/0b6c5a4e-1f1e-4c1c-9a57-1f0d2b8f7c1a/messages",
        "query_string": b"",
        "http_version": "1.1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        config = copy.deepcopy(LOGGING_CONFIG)
        config["handlers"]["access"] = {
            "class": "logging.FileHandler",
            "filename": str(Path(tmp) / "access.log"),
            "formatter": "access",
        }
        logging.config.dictConfig(config)
        access = logging.getLogger("uvicorn.access")
        started = time.process_time()
        for _ in range(requests):
            access.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                200,
            )
        used = time.process_time() - started
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    return used / requests * 1e6


async def _bare_loop(app: Any, scope: dict[str, Any], sink: Any, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), None, sink)
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="medians are reported")
    args = parser.parse_args(argv)
    run.ensure_tools()
    started = time.time()
    results: dict[str, dict[str, list[load.Result]]] = {}
    log_bytes: dict[str, list[int]] = {}
    cpu_us: dict[str, dict[str, list[float]]] = {}
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        scratch = Path(tmp)
        token = dataset.populate(url, SHAPE)
        ids_file = scratch / "ids.txt"
        ids_file.write_text("\n".join(dataset.conversation_ids(SHAPE)) + "\n")
        for repeat in range(args.repeats):
            for name, (_, env, plain_uvicorn) in CONFIGURATIONS.items():
                command = uvicorn_command() if plain_uvicorn else servers.chatkeep(WORKERS)
                log_file = scratch / f"{name}-{repeat}.log"
                with (
                    log_file.open("wb") as output,
                    servers.serving(
                        command, {"DATABASE_URL": url, **env}, "/health/ready", output
                    ) as server,
                ):
                    measure = functools.partial(
                        load.wrk,
                        server.url,
                        mode="read",
                        ids_file=ids_file,
                        token=token,
                        users=SHAPE.users,
                    )
                    measure(concurrency=16, seconds=2)  # warm-up
                    for concurrency in CONCURRENCY:
                        cpu_before = workers_cpu_seconds(server)
                        result = measure(concurrency=concurrency, seconds=args.seconds)
                        used = workers_cpu_seconds(server) - cpu_before
                        level = f"c{concurrency}"
                        results.setdefault(name, {}).setdefault(level, []).append(result)
                        cpu_us.setdefault(name, {}).setdefault(level, []).append(
                            used / (result.rate * args.seconds) * 1e6
                        )
                log_bytes.setdefault(name, []).append(log_file.stat().st_size)
                print(
                    f"  {name} #{repeat + 1}: "
                    + ", ".join(f"{c} {r[-1]}" for c, r in results[name].items()),
                    flush=True,
                )
    RESULTS.write_text(
        json.dumps(
            {
                "command": " ".join(["python -m bench.observability", *(argv or sys.argv[1:])]),
                "seconds": args.seconds,
                "repeats": args.repeats,
                "workers": WORKERS,
                "configurations": {name: what for name, (what, _, _) in CONFIGURATIONS.items()},
                "results": load.summarised(results),
                "log_bytes": log_bytes,
                # Microseconds of the workers' CPU time per request served.
                "cpu_us": cpu_us,
                "wrapper_us": wrapper_costs(),
                "uvicorn_line_us": uvicorn_line_cost(),
                "load_average": os.getloadavg(),
                "total_seconds": time.time() - started,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"bench.observability: wrote {RESULTS}")
    return 0


HEADER = (
    "| configuration | c1 req/s | change | spread | p99 ms | CPU µs/req | change | c16 req/s "
    "| change | spread | p99 ms | CPU µs/req | change | wrapper µs |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def section(out: Path) -> str:
    """REPORT.md's "Metrics and access log", when `python -m bench.observability` has run."""
    path = out / "observability_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    figures: dict[str, dict[str, Any]] = result["results"]
    base = figures["none"]

    cpu: dict[str, dict[str, list[float]]] = result["cpu_us"]

    def cells(name: str, level: str) -> str:
        cell = figures[name][level]
        middle = cell["median"]
        change = middle["rate"] / base[level]["median"]["rate"] - 1
        used = median(cpu[name][level])
        more = used / median(cpu["none"][level]) - 1
        return (
            f"{middle['rate']:,.0f} | {change:+.1%} | ±{report.spread(cell):.0%} | "
            f"{middle['p99_ms']:.2f} | {used:,.0f} | {more:+.1%}"
        )

    rows = "\n".join(
        f"| {what} | {cells(name, 'c1')} | {cells(name, 'c16')} | "
        f"{result['wrapper_us'].get(name, 0):.1f} |"
        for name, what in result["configurations"].items()
    )
    load_average = ", ".join(f"{value:.1f}" for value in result["load_average"])
    wrapper = result["wrapper_us"]
    read_us = median(cpu["none"]["c16"])
    line_us = {kind: wrapper[kind] - wrapper["none"] for kind in ("text", "json")}
    metrics_us = wrapper["metrics"] - wrapper["none"]
    return f"""## Metrics and access log
Generated by `{result["command"]}`: the latest 50 messages of a random conversation (wrk,
`read`), through `chatkeep serve --workers {result["workers"]}` started afresh in each
configuration, its output written to a file. Medians of {result["repeats"]} runs of
{result["seconds"]} s per configuration and concurrency, the configurations taking turns; the
change is against the first row. "CPU µs/req" is the user and system time the workers used per
request served (from /proc, so it holds whatever else the machine runs meanwhile, unlike the
rates); "wrapper µs" is the CPU time `service/api/observe.py` adds to a request answered at once,
measured in one process (prometheus-client in its single-process mode there, its multiprocess
mode in the servers).

{HEADER}
{rows}

One access log line costs {line_us["text"]:.0f} µs of CPU in text and {line_us["json"]:.0f} µs in
JSON ({line_us["text"] / read_us:.1%} and {line_us["json"] / read_us:.1%} of the {read_us:,.0f} µs
a read costs the workers at c16); uvicorn's own line, which chatkeep's replaces, costs
{result["uvicorn_line_us"]:.0f} µs. Counting a request for the metrics costs {metrics_us:.1f} µs
in one process (the servers' multiprocess mode writes to memory-mapped files: the rows above),
and the request id {wrapper["none"]:.1f} µs. So the access log is on by default
(`CHATKEEP_ACCESS_LOG`), and metrics cost little enough to turn on wherever they are scraped.
Load average when the run ended: {load_average} (a machine shared with other work: the rates
move with it, and changes within their spread are noise; the CPU per request moves less).
"""


if __name__ == "__main__":
    sys.exit(main())
