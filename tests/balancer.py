"""Several `chatkeep serve` instances behind a real HAProxy (Debian's package), for tests of the
service as it is deployed past one machine.

HAProxy checks each instance's /health/ready (so an instance that is draining or gone is taken
out), retries a request whose connection to an instance fails on another one (`retries`,
`option redispatch`), and streams responses as they come (Server-Sent Events pass through).
Its admin socket tells the tests when it has seen an instance go down or come back.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.db.embedded import _free_port
from tests.live import serve, service_env, stop, wait_ready

MISSING = "HAProxy is not installed: `apt-get install haproxy` (.ci/run installs it)"
# How often HAProxy checks an instance, how long a check may take, and how many checks in a row
# change its state. Generous for a busy 2-core machine: a slow answer must not take out an
# instance that is fine (both out at once would be HAProxy's own 503s).
CHECK_MILLISECONDS = 300
CHECK_TIMEOUT = "3s"
CHECKS_TO_CHANGE = 3
CONFIG = """\
global
    maxconn 2000
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout check {check_timeout}
    # A request whose connection to an instance fails goes to another one.
    retries 3
    option redispatch 1

frontend chatkeep
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server check inter {inter}ms fastinter {inter}ms downinter {inter}ms \
fall {fall} rise {fall}
{servers}
"""


def haproxy() -> str:
    """The haproxy binary; skips the test when there is none."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if found is None:
        pytest.skip(MISSING)
    return found


class Instance:
    """One `chatkeep serve` on a port of its own that stays the same across restarts."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = serve(self.env, self.port)
        wait_ready(self.base, self.process)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; in-flight requests are cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator sends it; returns at once (the instance drains)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, seconds: float = 60) -> tuple[int, str]:
        """(exit status, everything it printed) once it has exited by itself."""
        assert self.process is not None
        output, _ = self.process.communicate(timeout=seconds)
        return self.process.returncode, output

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.base}/health/ready", timeout=5)

    def close(self) -> str:
        if self.process is None or self.process.poll() is not None:
            return ""
        return stop(self.process)


class Balancer:
    def __init__(self, directory: Path, instances: list[Instance]) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.socket = directory / "admin.sock"
        servers = "\n".join(f"    server {i.name} 127.0.0.1:{i.port}" for i in instances)
        config = directory / "haproxy.cfg"
        config.write_text(
            CONFIG.format(
                socket=self.socket,
                port=self.port,
                inter=CHECK_MILLISECONDS,
                check_timeout=CHECK_TIMEOUT,
                fall=CHECKS_TO_CHANGE,
                servers=servers,
            )
        )
        # -db: stay in the foreground; -W: master-worker, so SIGTERM stops it cleanly.
        self.process = subprocess.Popen(
            [haproxy(), "-db", "-W", "-f", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(self.socket))
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's statistics of each instance, by name (`show stat`: status, hrsp_2xx,
        wretr for retries, wredis for redispatches, ...)."""
        lines = self.admin("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {
            row["svname"]: row
            for row in rows
            if row.get("pxname") == "instances" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def states(self) -> dict[str, str]:
        """Each instance's state as HAProxy sees it ("UP", "DOWN", "UP 1/2", ...)."""
        return {name: row["status"] for name, row in self.stats().items()}

    def answered(self, name: str) -> int:
        """The 2xx responses the instance has given through the balancer."""
        return int(self.stats()[name]["hrsp_2xx"])

    def wait_for(self, name: str, state: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        seen = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[0]
            try:
                seen = self.states().get(name)
            except OSError:  # the admin socket is not there yet
                seen = None
            if seen == state:
                return
            time.sleep(0.05)
        pytest.fail(f"HAProxy did not see {name} {state} in {seconds} s (last: {seen})")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


@contextmanager
def balanced(
    database_url: str, settings: dict[str, str], count: int = 2
) -> Iterator[tuple[Balancer, list[Instance]]]:
    """``count`` instances on ``database_url`` with ``settings`` (name: value, as
    CHATKEEP_<NAME>), all up behind HAProxy."""
    haproxy()
    env = service_env(database_url, **settings)
    instances = [Instance(f"instance{n}", env) for n in range(1, count + 1)]
    with tempfile.TemporaryDirectory(prefix="chatkeep-haproxy-") as directory:
        balancer = None
        try:
            for instance in instances:
                instance.start()
            balancer = Balancer(Path(directory), instances)
            for instance in instances:
                balancer.wait_for(instance.name, "UP")
            yield balancer, instances
        finally:
            if balancer is not None:
                balancer.close()
            outputs = [instance.close() for instance in instances]
            for output in outputs:
                # A 500 is a bug, whatever the test saw: the service logs each one as unhandled.
                assert "unhandled error" not in output, output[-6000:]
