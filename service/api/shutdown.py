"""Graceful shutdown: drain, end the event streams, then let uvicorn stop.

uvicorn stops accepting connections the moment it handles SIGTERM, then waits for every open
response before the lifespan's shutdown runs. Behind a load balancer that is too early: the
balancer still sends requests until its health checks see the instance go, and those requests
find the port closed. So SIGTERM first starts a drain of ``drain_seconds``: the worker keeps
serving while /health/ready answers 503 "draining", and only then hands the signal to uvicorn.

An event stream never finishes by itself, so it would hold uvicorn's wait forever: the end of
the drain also ends every stream (clients reconnect, by then to another instance, and resume
with Last-Event-ID). SIGINT (Ctrl-C), or a second SIGTERM, skips what is left of the drain.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from service.history.live import Hub

log = logging.getLogger(__name__)


class Drain:
    """Whether this worker is shutting down; /health/ready reads it."""

    def __init__(self) -> None:
        self.draining = False


def drain_on_exit_signal(drain: Drain, hub: Hub, drain_seconds: float) -> Callable[[], None]:
    """Chain our handling of SIGTERM and SIGINT before uvicorn's; returns what undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    chained: dict[signal.Signals, tuple[Any, Any]] = {}
    stopped = False

    def stop(previous: Any, number: int, frame: FrameType | None) -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        drain.draining = True
        # The hub belongs to the loop, and a signal handler may run in the middle of it.
        loop.call_soon_threadsafe(hub.close)
        previous(number, frame)  # uvicorn's: stop accepting, finish in-flight requests, exit

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def on_signal(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            if number == signal.SIGTERM and drain_seconds > 0 and not drain.draining:
                drain.draining = True
                log.warning(
                    "SIGTERM: draining for %g s (/health/ready answers 503), then shutting down",
                    drain_seconds,
                )
                loop.call_soon_threadsafe(
                    loop.call_later, drain_seconds, stop, previous, number, None
                )
                return
            stop(previous, number, frame)

        signal.signal(signum, on_signal)
        chained[signum] = (previous, on_signal)

    def restore() -> None:
        for signum, (previous, ours) in chained.items():
            if signal.getsignal(signum) is ours:
                signal.signal(signum, previous)

    return restore
