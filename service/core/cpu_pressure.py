"""Whether the machine (or the container) is short of CPU, from Linux's pressure stall
information: the share of the last second in which some runnable task waited for a core.

The live hub reads it to favour writers over fan-out. It is the machine's figure, not the
worker's own: a worker that serves no requests still takes the CPU the busy one, the other
workers and PostgreSQL need when it writes to thousands of streams. Without PSI (another
system, or a kernel built without it) the machine never reads as short."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

# The container's own figure (cgroup v2, quota throttling included) first, else the machine's.
PSI_FILES = (Path("/sys/fs/cgroup/cpu.pressure"), Path("/proc/pressure/cpu"))
WINDOW_SECONDS = 1.0
# Tasks waited for a core over 30% of the time: on the 2-core benchmark machine, writers
# running flat out give 55 to 65%; a thousand streams' fan-out with few writes, 5 to 15%.
SHORT_SHARE = 0.3
# What reading a file that is not (or no longer) a PSI file raises.
UNREADABLE = (OSError, ValueError, IndexError)


def stalled_microseconds(path: Path) -> int:
    """The "some" line's total: microseconds in which at least one task waited for a CPU."""
    some = path.read_text().split("\n", 1)[0]
    return int(some.rsplit("total=", 1)[1])


class CpuPressure:
    def __init__(
        self,
        files: Sequence[Path] = PSI_FILES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._file, self._stalled = _first_readable(files)
        self._since = clock()
        self._short = False

    def short(self) -> bool:
        """Whether tasks waited for a CPU over SHORT_SHARE of the time since the last look,
        looking again at most once a window (a look reads one small file)."""
        now = self._clock()
        if self._file is None or now - self._since < WINDOW_SECONDS:
            return self._short
        try:
            stalled = stalled_microseconds(self._file)
        except UNREADABLE:
            # Gone or changed under us: carry on as a machine without PSI.
            self._file, self._short = None, False
            return False
        share = (stalled - self._stalled) / 1e6 / (now - self._since)
        self._since, self._stalled, self._short = now, stalled, share >= SHORT_SHARE
        return self._short


def _first_readable(files: Sequence[Path]) -> tuple[Path | None, int]:
    """The first of ``files`` that reads as PSI, with its total so far (None, 0: none does)."""
    for path in files:
        try:
            return path, stalled_microseconds(path)
        except UNREADABLE:
            continue
    return None, 0
