"""An upload read into a bounded temporary file before any database connection is taken.

A client that sends slowly, or stops sending, then holds a worker's task and a temporary file,
never a pooled connection or an open transaction. The client gets ``idle_seconds`` between two
pieces and ``deadline_seconds`` for the whole body; the limits of the caller's ``pieces``
iterator (sizes) apply as it is read.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import IO

from service.core.errors import TimedOut

# Uploads this small stay in memory; larger ones go to a temporary file on disk.
IN_MEMORY_BYTES = 1024 * 1024
# Bytes handed on per piece when the spooled body is read back.
READ_BYTES = 256 * 1024


class Spooled:
    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it was received, from the start."""
        for piece in self._read():
            yield piece

    def _read(self) -> Iterator[bytes]:
        self._file.seek(0)
        while piece := self._file.read(READ_BYTES):
            yield piece


@asynccontextmanager
async def spooled(
    pieces: AsyncIterable[bytes], *, idle_seconds: float, deadline_seconds: float
) -> AsyncIterator[Spooled]:
    """The whole of ``pieces``, received within the time limits (else TimedOut), for the length
    of the block; the temporary file is gone afterwards."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    source = aiter(pieces)
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as file:
        while True:
            try:
                async with asyncio.timeout_at(min(deadline, loop.time() + idle_seconds)):
                    piece = await anext(source)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise TimedOut(
                    "the upload was not received in time: at most "
                    f"{idle_seconds:g} s between two pieces, {deadline_seconds:g} s in all",
                    field="body",
                ) from exc
            file.write(piece)
        yield Spooled(file)
