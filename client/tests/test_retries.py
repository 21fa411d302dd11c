"""Safe retries. Against a real server: the connection drops after the server has committed
(the answer is lost), the client sends the request again, and nothing is stored twice. Against
scripted answers: 503 and 429 are retried after their Retry-After, within the policy's bounds."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from backends import LiveServer
from chatkeep_client import (
    AsyncChatkeep,
    Chatkeep,
    ConnectionFailed,
    NotFound,
    RateLimited,
    Retry,
    Unavailable,
    ext,
)

FAST = Retry(retries=3, backoff=0.01)


def _drops(request: httpx.Request, methods: frozenset[str], remaining: list[int]) -> bool:
    if request.method in methods and remaining[0] > 0:
        remaining[0] -= 1
        return True
    return False


class LoseAnswers(httpx.BaseTransport):
    """Forwards each request to the real server, then, for the first ``count`` requests of
    ``methods``, throws the answer away and fails as a dropped connection does."""

    def __init__(self, count: int = 1, methods: frozenset[str] = frozenset({"POST"})) -> None:
        self.inner = httpx.HTTPTransport()
        self.methods = methods
        self.remaining = [count]
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = self.inner.handle_request(request)
        if _drops(request, self.methods, self.remaining):
            response.read()
            response.close()
            raise httpx.RemoteProtocolError("connection dropped after the server answered")
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncLoseAnswers(httpx.AsyncBaseTransport):
    def __init__(self, count: int = 1, methods: frozenset[str] = frozenset({"POST"})) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.methods = methods
        self.remaining = [count]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if _drops(request, self.methods, self.remaining):
            await response.aread()
            await response.aclose()
            raise httpx.RemoteProtocolError("connection dropped after the server answered")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def lossy(live_server: LiveServer) -> Iterator[tuple[Chatkeep, LoseAnswers, Chatkeep]]:
    """(a client whose first POST's answer is lost, its transport, a client that loses
    nothing, to check what is stored)."""
    transport = LoseAnswers()
    with (
        Chatkeep(
            live_server.base_url, api_key=live_server.api_key, retries=FAST, transport=transport
        ) as client,
        Chatkeep(live_server.base_url, api_key=live_server.api_key) as checker,
    ):
        yield client, transport, checker


def test_a_retried_append_stores_each_message_once(
    lossy: tuple[Chatkeep, LoseAnswers, Chatkeep],
) -> None:
    client, transport, checker = lossy
    conversation_id = uuid.uuid4()
    appended = client.messages.append(
        conversation_id,
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    )
    assert len(transport.sent) == 2  # the first answer was lost: sent again
    assert transport.sent[0].content == transport.sent[1].content
    assert [m.seq for m in appended.items] == [1, 2]
    stored = checker.messages.list(conversation_id).items
    assert [m.content for m in stored] == ["hi", "hello"]
    assert [m.id for m in stored] == [m.id for m in appended.items]


async def test_a_retried_async_append_stores_each_message_once(live_server: LiveServer) -> None:
    conversation = ext(f"async-{uuid.uuid4()}")
    async with AsyncChatkeep(
        live_server.base_url,
        api_key=live_server.api_key,
        retries=FAST,
        transport=AsyncLoseAnswers(count=2),
    ) as client:
        appended = await client.messages.append(
            conversation, [{"role": "user", "content": f"m{n}"} for n in range(3)]
        )
        assert [m.seq for m in appended.items] == [1, 2, 3]
        assert [m.seq async for m in client.messages.iter(conversation)] == [1, 2, 3]


def test_retried_creates_uploads_and_deletes_do_what_they_did_once(
    lossy: tuple[Chatkeep, LoseAnswers, Chatkeep],
) -> None:
    client, transport, checker = lossy
    owner = f"retry-{uuid.uuid4()}"
    created = client.conversations.create(user_id=owner)
    assert checker.conversations.count(user_id=owner) == 1
    transport.remaining[0] = 1
    uploaded = client.files.upload(created.id, io.BytesIO(b"bytes"), filename="f.bin")
    assert [f.id for f in checker.files.list(created.id).items] == [uploaded.id]
    transport.methods, transport.remaining[0] = frozenset({"DELETE"}), 1
    # The first attempt deleted it; the second finds it gone: that is the delete's success.
    client.conversations.delete(created.id)
    with pytest.raises(NotFound):
        checker.conversations.get(created.id)


def test_a_conditional_write_whose_answer_is_lost_is_not_sent_again(
    lossy: tuple[Chatkeep, LoseAnswers, Chatkeep],
) -> None:
    client, transport, checker = lossy
    created = checker.conversations.create()
    with pytest.raises(ConnectionFailed):
        client.messages.append(
            created.id, [{"role": "user", "content": "once"}], if_match=created.version
        )
    assert len(transport.sent) == 1
    assert [m.content for m in checker.messages.list(created.id).items] == ["once"]


# --- scripted answers ------------------------------------------------------------------------


Script = list[Callable[[httpx.Request], httpx.Response]]


def problem(
    status: int, retry_after: str | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    body = {"status": status, "title": "busy", "detail": "come back later"}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return answer


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"count": 7})


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def lost(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset", request=request)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr("chatkeep_client.client.time.sleep", waited.append)
    return waited


def scripted(script: Script, retries: Retry = FAST) -> tuple[Chatkeep, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return script[min(len(seen), len(script)) - 1](request)

    client = Chatkeep(
        "http://chatkeep.test",
        api_key="ck_x",
        retries=retries,
        transport=httpx.MockTransport(handle),
    )
    return client, seen


def test_unavailable_is_retried_after_retry_after(sleeps: list[float]) -> None:
    client, seen = scripted([problem(503, "2"), problem(503, "1"), ok])
    assert client.conversations.count() == 7
    assert len(seen) == 3
    assert sleeps[0] >= 2
    assert sleeps[1] >= 1


def test_retries_run_out_with_the_last_error(sleeps: list[float]) -> None:
    client, seen = scripted([problem(503, "1")], Retry(retries=2, backoff=0.01))
    with pytest.raises(Unavailable) as raised:
        client.conversations.count()
    assert (raised.value.status, raised.value.retry_after) == (503, 1.0)
    assert len(seen) == 3
    assert len(sleeps) == 2


def test_a_retry_after_over_the_cap_is_raised_at_once(sleeps: list[float]) -> None:
    client, seen = scripted([problem(429, "120"), ok], Retry(max_retry_after=30))
    with pytest.raises(RateLimited) as raised:
        client.conversations.count()
    assert raised.value.retry_after == 120
    assert (len(seen), sleeps) == (1, [])


def test_backoff_grows_with_jitter_and_stays_under_its_cap(sleeps: list[float]) -> None:
    policy = Retry(retries=6, backoff=0.5, max_backoff=2.0)
    client, seen = scripted([refused], policy)
    with pytest.raises(ConnectionFailed):
        client.conversations.count()
    assert len(seen) == 7
    assert all(0 <= wait <= min(2.0, 0.5 * 2**n) for n, wait in enumerate(sleeps))


def conditional_update(client: Chatkeep) -> object:
    return client.conversations.update(uuid.uuid4(), title="x", if_match=3)


def read(client: Chatkeep) -> object:
    return client.conversations.get(uuid.uuid4())


def upload_from_a_pipe(client: Chatkeep) -> object:
    return client.files.upload(uuid.uuid4(), io.BufferedReader(NoSeek(b"x")), filename="f")


@pytest.mark.parametrize(
    ("failure", "call", "sent_again"),
    [
        # Never sent: any request may go again.
        (refused, conditional_update, True),
        # Sent, answer lost: only what is the same done twice goes again.
        (lost, read, True),
        (lost, conditional_update, False),
        # A body that cannot be read twice cannot be sent twice.
        (refused, upload_from_a_pipe, False),
    ],
)
def test_what_is_sent_again_after_a_failure(
    sleeps: list[float],
    failure: Callable[[httpx.Request], httpx.Response],
    call: Callable[[Chatkeep], object],
    sent_again: bool,
) -> None:
    client, seen = scripted([failure, problem(404)], Retry(retries=1, backoff=0.01))
    with pytest.raises(NotFound if sent_again else ConnectionFailed):
        call(client)
    assert len(seen) == (2 if sent_again else 1)


class NoSeek(io.RawIOBase):
    """A stream that cannot be read twice (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), len(self.data))
        buffer[:size], self.data = self.data[:size], self.data[size:]
        return size
