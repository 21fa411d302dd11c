"""The synchronous client: ``Chatkeep``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar
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
from chatkeep_client._wrap import SyncResource, sync, sync_pages
from chatkeep_client.retry import Retry, policy

T = TypeVar("T")
CHUNK = 64 * 1024
Destination = str | os.PathLike[str] | IO[bytes]


class Conversations(SyncResource):
    create = sync(conversations.create)
    get = sync(conversations.get)
    list = sync(conversations.page)
    iter = sync_pages(conversations.iterate)
    count = sync(conversations.count)
    update = sync(conversations.update)
    patch_metadata = sync(conversations.patch_metadata)
    delete = sync(conversations.delete)
    delete_many = sync(conversations.delete_many)


class Messages(SyncResource):
    append = sync(messages.append)
    list = sync(messages.page)
    iter = sync_pages(messages.iterate)
    get = sync(messages.get)
    update = sync(messages.update)
    delete = sync(messages.delete)
    clear = sync(messages.clear)


class Files(SyncResource):
    upload = sync(files.upload)
    get = sync(files.get)
    list = sync(files.page)
    iter = sync_pages(files.iterate)
    set_metadata = sync(files.set_metadata)
    delete = sync(files.delete)

    def iter_content(
        self, conversation_id: ConversationRef, file_id: UUID | str, *, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        """The file's bytes as they arrive, a chunk at a time."""
        client = self._client
        assert isinstance(client, Chatkeep)
        with client._stream(files.content(conversation_id, file_id)) as response:
            yield from response.iter_bytes(chunk_size)

    def download(
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
        if not isinstance(to, str | os.PathLike):
            return sum(to.write(chunk) for chunk in chunks)
        target = Path(to)
        partial = target.with_name(f".{target.name}.part")
        try:
            with partial.open("wb") as file:
                written = sum(file.write(chunk) for chunk in chunks)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return written

    def read(self, conversation_id: ConversationRef, file_id: UUID | str) -> bytes:
        """The whole file in memory."""
        return b"".join(self.iter_content(conversation_id, file_id))


class Prompts(SyncResource):
    put = sync(prompts.put)
    get = sync(prompts.get)
    versions = sync(prompts.versions)
    iter_versions = sync_pages(prompts.iterate_versions)
    list = sync(prompts.page)
    iter = sync_pages(prompts.iterate)
    retire = sync(prompts.retire)


class Users(SyncResource):
    claim = sync(users.claim)
    erase = sync(users.erase)


class Auth(SyncResource):
    token = sync(users.token)


class Chatkeep:
    """A chatkeep service. Credentials: an ``api_key`` (a trusted back end) or a user
    ``token``, and/or a visitor's ``session_id``. ``retries`` is how many times a request the
    service did not carry out (or that is safe to repeat) is sent again; a ``Retry`` tunes the
    waits. ``http_client`` or ``transport`` replace the underlying httpx ones (tests, proxies).
    Use it as a context manager, or ``close()`` it."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        session_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int | Retry = 2,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._headers = credential_headers(api_key, token, session_id)
        # The newest consistency token received; sent on reads (_consistency.py).
        self._consistency = Consistency()
        self._retry = policy(retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self.conversations = Conversations(self)
        self.messages = Messages(self)
        self.files = Files(self)
        self.prompts = Prompts(self)
        self.users = Users(self)
        self.auth = Auth(self)

    def with_credentials(
        self,
        *,
        api_key: str | None = None,
        token: str | None = None,
        session_id: str | None = None,
    ) -> Chatkeep:
        """The same service and connections, other credentials (a web back end acting for each
        visitor or user, say). Closing it leaves this client's connections open."""
        derived = Chatkeep(
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

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _exchange(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        """The call's successful response, after as many attempts as its retry policy allows;
        the error its last answer stands for otherwise."""
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
                    response = self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                time.sleep(attempts.delay_after(error))
                continue
            if attempts.settled(response):
                self._consistency.saw(response)
                return response
            delay = attempts.delay_before_retry(response)
            if delay is None:
                response.read()
                raise_for(response)
            response.close()
            time.sleep(delay)

    def _send(self, call: Call[T]) -> T:
        return call.decode(self._exchange(call, stream=False))

    @contextmanager
    def _stream(self, call: Call[Any]) -> Iterator[httpx.Response]:
        response = self._exchange(call, stream=True)
        try:
            yield response
        finally:
            response.close()
