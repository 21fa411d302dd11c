"""What `chatkeep serve` sets up for the workers' logs and metrics before they start."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from service.core.settings import Settings

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def metrics_directory(settings: Settings, workers: int) -> Iterator[None]:
    """With metrics on and several workers, a directory where every worker keeps its metrics'
    values (prometheus-client's multiprocess mode), so a scrape of any worker adds them all
    up. The operator's PROMETHEUS_MULTIPROC_DIR is used when set, emptied first: values a
    previous run left would be counted again. Else a temporary directory, removed at exit.

    One worker needs none: it counts in its own memory (it is this process, which has imported
    prometheus-client already)."""
    if not settings.metrics_token or workers < 2:
        yield
        return
    if chosen := os.environ.get(MULTIPROC_VARIABLE):
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.db"):
            leftover.unlink()
        yield
        return
    created = tempfile.mkdtemp(prefix="chatkeep-metrics-")
    os.environ[MULTIPROC_VARIABLE] = created
    try:
        yield
    finally:
        del os.environ[MULTIPROC_VARIABLE]
        shutil.rmtree(created, ignore_errors=True)
