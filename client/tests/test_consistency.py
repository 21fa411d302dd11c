"""The client passes the newest consistency token along by itself: against a real server with a
paused read replica (tests/replicas.py), what a client wrote it reads back, while a client that
never saw the write reads the replica, which misses it. The fake sends and reads no token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from backends import LiveServer
from chatkeep_client import AsyncChatkeep, Chatkeep, NotFound
from chatkeep_client._consistency import HEADER, Consistency
from chatkeep_client.testing import FakeChatkeep
from conftest import SERVER_SETTINGS
from tests.live import live_service
from tests.replicas import StreamingReplica, streaming_replica

__all__ = ["streaming_replica"]


@pytest.fixture(scope="module")
def replicated(
    live_server: LiveServer, streaming_replica: StreamingReplica
) -> Iterator[tuple[str, StreamingReplica]]:
    """(base URL of a server reading from the paused replica, the replica). Any replica, however
    far behind, serves reads without a token here."""
    replica = streaming_replica
    replica.catch_up()
    with live_service(
        live_server.database_url,
        **SERVER_SETTINGS,
        replica_urls=replica.same_database_on_replica(live_server.database_url),
        replica_max_lag_seconds="3600",
    ) as (base_url, _):
        replica.pause()
        try:
            yield base_url, replica
        finally:
            replica.resume()


def test_a_client_reads_its_own_writes_from_a_deployment_with_replicas(
    replicated: tuple[str, StreamingReplica], live_server: LiveServer
) -> None:
    base_url, _ = replicated
    with Chatkeep(base_url, api_key=live_server.api_key) as ck:
        assert ck.consistency_token is None
        created = ck.conversations.create(title="written")
        token = ck.consistency_token
        assert token is not None
        assert ck.conversations.get(created.id).title == "written"
        ck.messages.append(created.id, [{"role": "user", "content": "hi"}])
        assert ck.consistency_token != token
        assert [m.content for m in ck.messages.list(created.id).items] == ["hi"]
        # Its clients for other callers share what it has seen.
        assert ck.with_credentials(api_key=live_server.api_key).conversations.get(created.id)
        with Chatkeep(base_url, api_key=live_server.api_key) as stranger:
            # No token: the paused replica answers, and it has not replayed the write.
            with pytest.raises(NotFound):
                stranger.conversations.get(created.id)
            stranger.consistency_token = ck.consistency_token or ""
            assert stranger.conversations.get(created.id).message_count == 1


async def test_the_async_client_reads_its_own_writes_too(
    replicated: tuple[str, StreamingReplica], live_server: LiveServer
) -> None:
    base_url, _ = replicated
    async with AsyncChatkeep(base_url, api_key=live_server.api_key) as ck:
        created = await ck.conversations.create(title="written")
        assert ck.consistency_token is not None
        assert (await ck.conversations.get(created.id)).title == "written"
        shared = ck.with_credentials(api_key=live_server.api_key)
        assert (await shared.conversations.get(created.id)).id == created.id
        async with AsyncChatkeep(base_url, api_key=live_server.api_key) as stranger:
            with pytest.raises(NotFound):
                await stranger.conversations.get(created.id)


def test_the_fake_sends_no_token_and_ignores_one() -> None:
    ck = FakeChatkeep()
    ck.consistency_token = "FFFFFFFF/FFFFFFFF"
    created = ck.conversations.create(title="t")
    assert ck.conversations.get(created.id).title == "t"
    assert ck.consistency_token == "FFFFFFFF/FFFFFFFF"
    assert FakeChatkeep().consistency_token is None


def answer(token: str | None) -> httpx.Response:
    return httpx.Response(200, headers={HEADER: token} if token else {})


def test_the_furthest_token_is_kept_and_sent_on_reads_only() -> None:
    consistency = Consistency()
    assert consistency.headers("GET") == {}
    consistency.saw(answer("1/A0"))
    # Answers may come back out of order: an older token does not replace a newer one.
    for token in ("1/9F", "0/FFFFFFFF", None, "not a token"):
        consistency.saw(answer(token))
    assert consistency.token == "1/A0"
    assert consistency.headers("GET") == {HEADER: "1/A0"}
    assert consistency.headers("POST") == {}
    consistency.saw(answer("2/0"))
    assert consistency.headers("HEAD") == {HEADER: "2/0"}


def test_a_client_sends_the_token_of_its_last_write_on_its_reads() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.method == "DELETE":
            return httpx.Response(204, headers={HEADER: "3/10"})
        return httpx.Response(200, json={"count": 0})

    ck = Chatkeep("http://chatkeep.test", api_key="ck_x", transport=httpx.MockTransport(handle))
    ck.conversations.count()
    ck.conversations.delete(uuid.uuid4())
    ck.conversations.count()
    ck.conversations.delete(uuid.uuid4())
    assert [request.headers.get(HEADER) for request in sent] == [None, None, "3/10", None]
