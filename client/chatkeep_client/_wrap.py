"""Resource methods made from the endpoint builders: each endpoint's signature and docstring
are written once (``_endpoints``) and become a method of the synchronous and of the
asynchronous client alike."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from chatkeep_client._call import Call, Pages, walk

A = ParamSpec("A")
T = TypeVar("T")
Item = TypeVar("Item")


class SyncSender(Protocol):
    def _send(self, call: Call[T]) -> T: ...


class AsyncSender(Protocol):
    async def _send(self, call: Call[T]) -> T: ...


class SyncResource:
    def __init__(self, client: SyncSender) -> None:
        self._client = client


class AsyncResource:
    def __init__(self, client: AsyncSender) -> None:
        self._client = client


def sync(build: Callable[A, Call[T]]) -> Callable[Concatenate[SyncResource, A], T]:
    @functools.wraps(build)
    def method(self: SyncResource, /, *args: A.args, **kwargs: A.kwargs) -> T:
        return self._client._send(build(*args, **kwargs))

    return method


def sync_pages(
    build: Callable[A, Pages[Any, Item]],
) -> Callable[Concatenate[SyncResource, A], Iterator[Item]]:
    @functools.wraps(build)
    def method(self: SyncResource, /, *args: A.args, **kwargs: A.kwargs) -> Iterator[Item]:
        return walk(build(*args, **kwargs), self._client._send)

    return method


def asynchronous(
    build: Callable[A, Call[T]],
) -> Callable[Concatenate[AsyncResource, A], Coroutine[Any, Any, T]]:
    @functools.wraps(build)
    async def method(self: AsyncResource, /, *args: A.args, **kwargs: A.kwargs) -> T:
        return await self._client._send(build(*args, **kwargs))

    return method


def async_pages(
    build: Callable[A, Pages[Any, Item]],
) -> Callable[Concatenate[AsyncResource, A], AsyncIterator[Item]]:
    @functools.wraps(build)
    async def method(
        self: AsyncResource, /, *args: A.args, **kwargs: A.kwargs
    ) -> AsyncIterator[Item]:
        pages = build(*args, **kwargs)
        call: Call[Any] | None = pages.first
        while call is not None:
            page = await self._client._send(call)
            for item in pages.items(page):
                yield item
            call = pages.after(page)

    return method
