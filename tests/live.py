"""A real `chatkeep serve` process, for tests that need the service as deployed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.db.embedded import _free_port

CHATKEEP = str(Path(sys.executable).with_name("chatkeep"))
STARTUP_SECONDS = 90


class Drained(subprocess.Popen[str]):
    """A server whose output is read as it comes: a server logging more than a pipe holds
    (a database outage's warnings) would otherwise stop at its next write. ``communicate``
    returns everything it printed."""

    def drain(self) -> Drained:
        self.printed: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.stdout is not None
        for line in self.stdout:
            self.printed.append(line)

    def communicate(
        self, input: str | None = None, timeout: float | None = None
    ) -> tuple[str, str]:
        self.wait(timeout)
        self.reader.join(timeout)
        return "".join(self.printed), ""


def serve(env: dict[str, str], port: int) -> Drained:
    return Drained(
        [CHATKEEP, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ).drain()


def peak_rss_mib(pid: int) -> float:
    """The most resident memory the process ever had (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("chatkeep serve did not become ready")


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as an orchestrator sends it; returns everything the process printed."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


def service_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a server on ``database_url`` with ``settings`` (CHATKEEP_<NAME>)."""
    env = {**os.environ, "DATABASE_URL": database_url, "CHATKEEP_LOG_LEVEL": "warning"}
    env.update({f"CHATKEEP_{name.upper()}": value for name, value in settings.items()})
    return env


@contextmanager
def live_service(database_url: str, **settings: str) -> Iterator[tuple[str, Any]]:
    """(base URL, process) of a real server on ``database_url``. The in-process test client
    runs requests one at a time, so concurrency, timeouts and signals need this."""
    port = _free_port()
    process = serve(service_env(database_url, **settings), port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base, process
    finally:
        if process.poll() is None:
            output = stop(process)
            # A 500 is a bug, whatever the test saw: the service logs each one as unhandled.
            assert "unhandled error" not in output, output[-6000:]
