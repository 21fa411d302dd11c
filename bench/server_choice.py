"""uvicorn against granian (python -m bench.server_choice, about 4 minutes): the same app, the
same 2 workers and uvloop, the latest 50 at c=16 and c=64, the 2-message append at c=16
(wrk), and turns at c=1 and c=16 (bench/turns.py). uvicorn runs as `chatkeep serve` deploys
it; granian in ASGI mode with the app's factory. Writes server_choice_results.json for the
report's "Server choice" section.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench import dataset, load, servers, turns
from service.cli.servers import APP_FACTORY

HERE = Path(__file__).parent
WRK_WORKLOADS = (("read", 16), ("read", 64), ("append", 16))


def granian(workers: int) -> list[str]:
    return [
        str(servers.BIN / "granian"),
        "--interface",
        "asgi",
        "--factory",
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
        "--host",
        "127.0.0.1",
        APP_FACTORY,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_choice", description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating, to share the noise")
    args = parser.parse_args(argv)
    shape = dataset.Shape(args.conversations, args.messages, 100, [])
    commands = {"uvicorn": servers.chatkeep(args.workers), "granian": granian(args.workers)}
    runs = []
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        token = dataset.populate(url, shape)
        ids = dataset.conversation_ids(shape)
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        env = {"DATABASE_URL": url, "CHATKEEP_LOG_LEVEL": "warning"}
        for round_ in range(args.rounds):
            for name, command in commands.items():
                with servers.serving(command, env, "/health/ready") as server:
                    for mode, concurrency in WRK_WORKLOADS:
                        measure = functools.partial(
                            load.wrk,
                            server.url,
                            mode=mode,
                            ids_file=ids_file,
                            token=token,
                            users=shape.users,
                            concurrency=concurrency,
                        )
                        measure(seconds=2)
                        result = measure(seconds=args.seconds)
                        runs.append(
                            {
                                "server": name,
                                "round": round_,
                                "workload": f"{mode} c{concurrency}",
                                **asdict(result),
                                "load_average": os.getloadavg()[0],
                            }
                        )
                        print(f"  {name} {mode} c{concurrency}: {result}", flush=True)
                    for concurrency in turns.CONCURRENCY:
                        turn = turns.measure(
                            server.url, token, ids, concurrency=concurrency, seconds=args.seconds
                        )
                        runs.append(
                            {
                                "server": name,
                                "round": round_,
                                "workload": f"turn c{concurrency}",
                                "rate": turn.turns_per_second,
                                "p50_ms": turn.turn_p50_ms,
                                "p99_ms": turn.turn_p99_ms,
                                "errors": turn.errors,
                                "load_average": os.getloadavg()[0],
                            }
                        )
                        print(f"  {name} turn c{concurrency}: {turn}", flush=True)
    run = {"workers": args.workers, "seconds": args.seconds, "runs": runs}
    (HERE / "server_choice_results.json").write_text(json.dumps(run, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
