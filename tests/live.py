"""A real `chatkeep serve` process, for tests that need the service as deployed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CHATKEEP = str(Path(sys.executable).with_name("chatkeep"))
STARTUP_SECONDS = 90


def serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CHATKEEP, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
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
