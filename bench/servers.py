"""Starting the HTTP servers under test (2 uvicorn workers each) and reading their memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from service.db.embedded import _free_port

BIN = Path(sys.executable).parent
READY_SECONDS = 60


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def worker_pids(self) -> list[int]:
        """The worker processes: uvicorn's children, not its resource tracker."""
        return [
            pid
            for pid in _children(self.process.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    def worker_peak_rss_mib(self) -> list[float]:
        """Peak RSS of each worker process."""
        return [peak_rss_mib(pid) for pid in self.worker_pids()]


@contextmanager
def serving(
    command: list[str], env: dict[str, str], probe: str, output: IO[bytes] | None = None
) -> Iterator[Server]:
    """Run ``command`` (which takes --port last) until the context ends; what it prints goes to
    ``output`` (a file: logs cost what writing them costs), else nowhere."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, **env},
        stdout=output or subprocess.DEVNULL,
        stderr=output or subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                if httpx.get(url + probe, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not become ready")
            time.sleep(0.2)
        yield Server(process, url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def chatkeep(workers: int) -> list[str]:
    """`chatkeep serve` exactly as deployed; DATABASE_URL comes from the environment."""
    return [str(BIN / "chatkeep"), "serve", "--workers", str(workers)]


# The bare handler has no health route: a listing answers 200 once its pool is up (user-0 is
# in every data set; an empty listing answers too).
BARE_READY = "/v1/conversations?user_id=user-0"


def bare(workers: int) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        "bench.bare_asgi:app",
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
