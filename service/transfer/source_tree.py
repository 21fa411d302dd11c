"""A source directory read without ever leaving it (``chatkeep import files``).

Only regular files and directories below it are read. A symbolic link or a special file (FIFO,
device, socket) is reported as skipped and never followed or opened, wherever it is. Every path
is opened one component at a time from the directory's own descriptor, each component checked
and opened with O_NOFOLLOW, so a link swapped in while the import runs is refused too instead of
followed. The directory itself may be a link: the operator named it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import BinaryIO

from service.transfer.report import Report

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in between the check and the open must not block the open.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Unreadable(Exception):
    """A path that is not read; ``reason`` says why (a link, a special file, an OS error)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _refused(mode: int) -> str | None:
    """Why an entry of this mode is never read; None for a regular file or a directory."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _open_below(parent: int, name: str, flags: int, path: Path) -> int:
    """``name`` in directory ``parent``, opened only if it is a directory (for _DIRECTORY) or a
    regular file: checked before opening (so a device is never opened), and the descriptor
    checked to be what was checked."""
    try:
        seen = os.stat(name, dir_fd=parent, follow_symlinks=False)
        wanted = stat.S_ISDIR if flags & os.O_DIRECTORY else stat.S_ISREG
        if not wanted(seen.st_mode):
            raise Unreadable(path, _refused(seen.st_mode) or "not what was listed")
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        raise Unreadable(path, exc.strerror or str(exc)) from exc
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        raise Unreadable(path, "replaced while being read")
    return fd


class SourceTree:
    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report

    def refuse(self, path: Path, reason: str) -> None:
        self.report.problem(str(path), f"{reason}; not read", "skipped")

    def _open_directory(self, parts: Sequence[str]) -> int:
        """A descriptor of the directory ``parts`` below the root, reached without links."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for n, part in enumerate(parts):
                child = _open_below(fd, part, _DIRECTORY, self.root.joinpath(*parts[: n + 1]))
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _split(self, path: Path) -> tuple[list[str], str]:
        *parents, name = PurePath(path).relative_to(self.root).parts
        return parents, name

    def _mode(self, path: Path) -> int | None:
        """The mode of what is at ``path`` (a link not followed); None when nothing is there,
        not even the directories above it, or when it cannot be read (reported)."""
        parents, name = self._split(path)
        try:
            fd = self._open_directory(parents)
            try:
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.refuse(path, exc.strerror or str(exc))
            return None
        except Unreadable as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                self.refuse(exc.path, exc.reason)
            return None
        return mode

    def directory(self, path: Path) -> bool:
        """Whether ``path`` is a directory to read; a link or special file there is reported,
        nothing (or a regular file) is not a directory."""
        if path == self.root:
            return True
        mode = self._mode(path)
        if mode is None:
            return False
        reason = _refused(mode)
        if reason is not None:
            self.refuse(path, reason)
        return stat.S_ISDIR(mode)

    def regular_file(self, path: Path) -> bool:
        """Whether ``path`` is a regular file to read; a link or special file there is
        reported, nothing (or a directory) is not one."""
        mode = self._mode(path)
        if mode is None or stat.S_ISDIR(mode):
            return False
        reason = _refused(mode)
        if reason is not None:
            self.refuse(path, reason)
        return reason is None

    def files(
        self, folder: Path, *, recursive: bool, wanted: Callable[[str], bool] = bool
    ) -> Iterator[Path]:
        """The regular files in ``folder`` whose name is ``wanted`` (and, when ``recursive``,
        in every directory below it), sorted; links and special files among them are
        reported. A directory reached through a link is never entered."""
        try:
            fd = self._open_directory(PurePath(folder).relative_to(self.root).parts)
        except Unreadable as exc:
            self.refuse(exc.path, exc.reason)
            return
        try:
            yield from self._walk(fd, folder, recursive, wanted)
        finally:
            os.close(fd)

    def _walk(
        self, fd: int, folder: Path, recursive: bool, wanted: Callable[[str], bool]
    ) -> Iterator[Path]:
        with os.scandir(fd) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            path = folder / entry.name
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                if recursive:
                    try:
                        child = _open_below(fd, entry.name, _DIRECTORY, path)
                    except Unreadable as exc:
                        self.refuse(path, exc.reason)
                        continue
                    try:
                        yield from self._walk(child, path, recursive, wanted)
                    finally:
                        os.close(child)
            elif wanted(entry.name):
                reason = _refused(mode)
                if reason is None:
                    yield path
                else:
                    self.refuse(path, reason)

    @contextmanager
    def open(self, path: Path) -> Iterator[BinaryIO]:
        """The regular file ``path``; Unreadable when it is anything else or cannot be
        opened."""
        parents, name = self._split(path)
        parent = self._open_directory(parents)
        try:
            fd = _open_below(parent, name, _FILE, path)
        finally:
            os.close(parent)
        with os.fdopen(fd, "rb") as source:
            yield source

    def read_bytes(self, path: Path) -> bytes:
        with self.open(path) as source:
            return source.read()
