"""The app a server's worker runs (service.app:create_worker_app): once started, what lives as
long as the worker is out of the garbage collector's walks (service/core/collector.py)."""

from __future__ import annotations

import os
import subprocess
import sys

# In a process of its own: freezing is for a process with one app, not for the tests' own.
STARTED_WORKER = """
import gc
from litestar.testing import TestClient
from service.app import create_worker_app

assert gc.get_freeze_count() == 0
with TestClient(create_worker_app()) as client:
    assert client.get("/health/live").status_code == 200
    print(gc.get_freeze_count())
"""


def test_a_started_worker_has_frozen_what_start_up_made(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "CHATKEEP_POOL_MIN_SIZE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", STARTED_WORKER],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # its stderr says why, below
    )
    assert done.returncode == 0, done.stderr
    # The modules, the app and its lifespans' objects: tens of thousands.
    assert int(done.stdout.split()[-1]) > 10_000
