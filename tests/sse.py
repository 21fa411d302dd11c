"""A Server-Sent Events client for tests and benchmarks: httpx streaming, parsed by the spec's
rules (fields until a blank line; comment lines start with ':')."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Event:
    event: str | None = None
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.last_id: str | None = None

    async def next(self, seconds: float = 10) -> Event | None:
        """The next event or comment block; None when the stream has ended."""
        return await asyncio.wait_for(self._next(), seconds)

    async def _next(self) -> Event | None:
        event = Event()
        seen = False
        async for line in self._lines:
            if line == "":
                if seen:
                    if event.id is not None:
                        self.last_id = event.id
                    return event
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event.comments.append(value)
            elif name == "data":
                event.data = f"{event.data}\n{value}" if event.data else value
            elif name == "id":
                event.id = value
            elif name == "event":
                event.event = value
            elif name == "retry":
                event.retry = int(value)
        return None

    async def next_event(self, seconds: float = 10) -> Event | None:
        """The next event that carries data (skipping comments and `retry`)."""
        while True:
            event = await self.next(seconds)
            if event is None or event.event is not None:
                return event

    async def take(self, count: int, seconds: float = 10) -> list[Event]:
        events: list[Event] = []
        for _ in range(count):
            event = await self.next_event(seconds)
            assert event is not None, f"the stream ended after {events}"
            events.append(event)
        return events

    def server_port(self) -> tuple[str, int]:
        """The client's end of the connection (to find the worker serving it)."""
        stream = self.response.extensions["network_stream"]
        address: tuple[str, int] = stream.get_extra_info("client_addr")
        return address


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, url: str, **options: Any
) -> AsyncIterator[EventStream]:
    async with client.stream("GET", url, **options) as response:
        yield EventStream(response)


def worker_serving(parent_pid: int, client_port: int) -> int:
    """The pid of the child of ``parent_pid`` (a uvicorn worker) holding the TCP connection
    whose other end is the client's ``client_port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == client_port:
                inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            ppid = int(status.split("PPid:")[1].split()[0])
            if ppid != parent_pid:
                continue
            for fd in (entry / "fd").iterdir():
                target = str(fd.readlink())
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue
    raise AssertionError(f"no worker of {parent_pid} serves client port {client_port}")
