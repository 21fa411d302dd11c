"""The asynchronous client: ``AsyncChatkeep``, the same surface as ``Chatkeep`` awaited
(listings' ``iter`` methods are async iterators: ``async for``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import httpx

from chatkeep_client._call import Call, ConversationRef
from chatkeep_client._consistency import Consistency
from chatkeep_client._endpoints import conversations, files, messages, prompts, users
from chatkeep_client._sending import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    Attempts,
    credential_headers,
    raise_for,
    url,
)
from chatkeep_client._wrap import AsyncResource, async_pages, asynchronous
from chatkeep_client.client import CHUNK, Destination
from chatkeep_client.retry import Retry, policy

T = TypeVar("T")


class AsyncConversations(AsyncResource):
    create = asynchronous(conversations.create)
    get = asynchronous(conversations.get)
    list = asynchronous(conversations.page)
    iter = async_pages(conversations.iterate)
    count = asynchronous(conversations.count)
    update = asynchronous(conversations.update)
    patch_metadata = asynchronous(conversations.patch_metadata)
    delete = asynchronous(conversations.delete)
    delete_many = asynchronous(conversations.delete_many)


class AsyncMessages(AsyncResource):
    append = asynchronous(messages.append)
    list = asynchronous(messages.page)
    iter = async_pages(messages.iterate)
    get = asynchronous(messages.get)
    update = asynchronous(messages.update)
    delete = asynchronous(messages.delete)
    clear = asynchronous(messages.clear)


class AsyncFiles(AsyncResource):
    upload = asynchronous(files.upload)
    get = asynchronous(files.get)
    list = asynchronous(files.page)
    iter = async_pages(files.iterate)
    set_metadata = asynchronous(files.set_metadata)
    delete = asynchronous(files.delete)

    async def iter_content(
        self, conversation_id: ConversationRef, file_id: UUID | str, *, chunk_size: int = CHUNK
    ) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive, a chunk at a time."""
        client = self._client
        assert isinstance(client, AsyncChatkeep)
        async with client._stream(files.content(conversation_id, file_id)) as response:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk

    async def download(
        self,
        conversation_id: ConversationRef,
        file_id: UUID | str,
        to: Destination,
        *,
        chunk_size: int = CHUNK,
    ) -> int:
        """Write the file's bytes to a path (replaced only once the download is complete) or
        a binary file object, streamed; how many bytes."""
        chunks = self.iter_content(conversation_id, file_id, chunk_size=chunk_size)
        written = 0
        if not isinstance(to, str | os.PathLike):
            async for chunk in chunks:
                written += to.write(chunk)
            return written
        target = Path(to)
        partial = target.with_name(f".{target.name}.part")
        try:
            # Chunks are written as they come: a local disk keeps up with the network.
            with partial.open("wb") as file:
                async for chunk in chunks:
                    written += file.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return written

    async def read(self, conversation_id: ConversationRef, file_id: UUID | str) -> bytes:
        """The whole file in memory."""
        return b"".join([chunk async for chunk in self.iter_content(conversation_id, file_id)])


class AsyncPrompts(AsyncResource):
    put = asynchronous(prompts.put)
    get = asynchronous(prompts.get)
    versions = asynchronous(prompts.versions)
    iter_versions = async_pages(prompts.iterate_versions)
    list = asynchronous(prompts.page)
    iter = async_pages(prompts.iterate)
    retire = asynchronous(prompts.retire)


class AsyncUsers(AsyncResource):
    claim = asynchronous(users.claim)
    erase = asynchronous(users.erase)


class AsyncAuth(AsyncResource):
    token = asynchronous(users.token)


class AsyncChatkeep:
    """``Chatkeep`` for asyncio: the same arguments and resources, each call awaited. Use it
    as an async context manager, or ``await aclose()`` it."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        session_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int | Retry = 2,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._headers = credential_headers(api_key, token, session_id)
        # The newest consistency token received; sent on reads (_consistency.py).
        self._consistency = Consistency()
        self._retry = policy(retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self.conversations = AsyncConversations(self)
        self.messages = AsyncMessages(self)
        self.files = AsyncFiles(self)
        self.prompts = AsyncPrompts(self)
        self.users = AsyncUsers(self)
        self.auth = AsyncAuth(self)

    def with_credentials(
        self,
        *,
        api_key: str | None = None,
        token: str | None = None,
        session_id: str | None = None,
    ) -> AsyncChatkeep:
        """The same service and connections, other credentials. Closing it leaves this
        client's connections open."""
        derived = AsyncChatkeep(
            self.base_url,
            api_key=api_key,
            token=token,
            session_id=session_id,
            retries=self._retry,
            http_client=self._http,
        )
        # What one of them wrote, the other reads (client/README.md "Read your writes").
        derived._consistency = self._consistency
        return derived

    @property
    def consistency_token(self) -> str | None:
        """The newest consistency token this client received (None before any write on a
        deployment with read replicas); sent on its reads so that they see its writes."""
        return self._consistency.token

    @consistency_token.setter
    def consistency_token(self, token: str) -> None:
        """Take over a token received elsewhere (another process, a browser), kept if it is
        newer than this client's."""
        self._consistency.remember(token)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _exchange(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        """As Chatkeep._exchange, awaited."""
        attempts = Attempts(self._retry, call)
        while True:
            try:
                with call.opened_body() as body:
                    request = self._http.build_request(
                        call.method,
                        url(self.base_url, call.path),
                        params=call.params,
                        headers={
                            **self._headers,
                            **call.headers,
                            **self._consistency.headers(call.method),
                        },
                        **body,
                    )
                    response = await self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                await asyncio.sleep(attempts.delay_after(error))
                continue
            if attempts.settled(response):
                self._consistency.saw(response)
                return response
            delay = attempts.delay_before_retry(response)
            if delay is None:
                await response.aread()
                raise_for(response)
            await response.aclose()
            await asyncio.sleep(delay)

    async def _send(self, call: Call[T]) -> T:
        return call.decode(await self._exchange(call, stream=False))

    @asynccontextmanager
    async def _stream(self, call: Call[Any]) -> AsyncIterator[httpx.Response]:
        response = await self._exchange(call, stream=True)
        try:
            yield response
        finally:
            await response.aclose()
