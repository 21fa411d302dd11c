"""Overload on its own (python -m bench.overload, about 6 minutes): the latest 50 through
`chatkeep serve --workers 2` at c=16, 64 and 256, with the admission gate off
(CHATKEEP_MAX_IN_FLIGHT=0, every request queues for the pool) and at a few limits; p50, p99 and
the share of requests answered 503. wrk's percentiles count every response, the quick 503s
too. Writes overload_results.json for the report's "Overload" section.
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

from bench import dataset, load, servers

HERE = Path(__file__).parent
CONCURRENCY = (16, 64, 256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limits", default="0,8,16,32", help="CHATKEEP_MAX_IN_FLIGHT values")
    parser.add_argument("--wait-ms", type=int, default=50, help="CHATKEEP_ADMISSION_WAIT_MS")
    args = parser.parse_args(argv)
    shape = dataset.Shape(args.conversations, args.messages, 100, [])
    runs = []
    with (
        dataset.server(os.environ.get("DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        token = dataset.populate(url, shape)
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(dataset.conversation_ids(shape)) + "\n")
        for limit in args.limits.split(","):
            env = {
                "DATABASE_URL": url,
                "CHATKEEP_LOG_LEVEL": "warning",
                "CHATKEEP_MAX_IN_FLIGHT": limit,
                "CHATKEEP_ADMISSION_WAIT_MS": str(args.wait_ms),
            }
            with servers.serving(servers.chatkeep(args.workers), env, "/health/ready") as server:
                for concurrency in CONCURRENCY:
                    measure = functools.partial(
                        load.wrk,
                        server.url,
                        mode="read",
                        ids_file=ids_file,
                        token=token,
                        users=shape.users,
                        concurrency=concurrency,
                    )
                    measure(seconds=2)
                    result = measure(seconds=args.seconds)
                    refused = result.errors / max(1.0, result.rate * args.seconds)
                    runs.append(
                        {
                            "max_in_flight": int(limit),
                            "concurrency": concurrency,
                            **asdict(result),
                            "refused_share": refused,
                            "load_average": os.getloadavg()[0],
                        }
                    )
                    print(
                        f"  limit {limit} c{concurrency}: {result} 503s {refused:.1%}", flush=True
                    )
    run = {"wait_ms": args.wait_ms, "workers": args.workers, "runs": runs}
    (HERE / "overload_results.json").write_text(json.dumps(run, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
