"""Read replicas with read-your-writes, against a real streaming replica (tests/replicas.py):
writes answer with a consistency token, reads that send it back never miss the write, reads
without one do reach the replica, and a replica that lags, is down or is no replica at all
serves nothing it should not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core.principal import ALL_PERMISSIONS
from service.core.settings import Settings
from service.db.dburl import DatabaseUrlError
from service.db.embedded import _free_port
from service.history.replicas import Replicas
from tests.helpers import assert_problem, create_key, messages_body
from tests.integration.conftest import Client, make_settings
from tests.replicas import StreamingReplica, streaming_replica

__all__ = ["streaming_replica"]

TOKEN = "Chatkeep-Consistency"


@pytest.fixture
def replica(streaming_replica: StreamingReplica) -> StreamingReplica:
    return streaming_replica


def replica_settings(database_url: str, *replica_urls: str, **overrides: str) -> Settings:
    return make_settings(
        database_url,
        replica_urls=",".join(replica_urls),
        replica_poll_seconds="0.02",
        **overrides,
    )


@pytest.fixture
def settings(database_url: str, replica: StreamingReplica) -> Settings:
    # A replica far behind still serves reads without a token unless a test says otherwise.
    return replica_settings(
        database_url, replica.same_database_on_replica(database_url), replica_max_lag_seconds="60"
    )


@pytest.fixture
async def client(
    app: Litestar, database_url: str, replica: StreamingReplica
) -> AsyncIterator[Client]:
    key = await create_key(database_url, ALL_PERMISSIONS)
    # The test's database, and the key, on the replica before the app polls it.
    replica.catch_up()
    async with AsyncTestClient(app=app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


@pytest.fixture
def paused(replica: StreamingReplica, database_url: str) -> Iterator[StreamingReplica]:
    """The replica receives the primary's log but replays none of it until the test ends (the
    test's database is there already)."""
    replica.catch_up()
    replica.pause()
    yield replica
    replica.resume()
    replica.catch_up()


def replicas_of(app: Litestar) -> Replicas:
    routed: Replicas = app.state.replicas
    return routed


async def test_a_read_with_the_writes_token_never_misses_it(
    client: Client, app: Litestar, replica: StreamingReplica
) -> None:
    conversation_id = str(uuid.uuid4())
    routed = replicas_of(app)
    for turn in range(150):
        append = await client.post(
            f"/v1/conversations/{conversation_id}/messages", json=messages_body(f"turn {turn}")
        )
        assert append.status_code == 201
        token = append.headers[TOKEN]
        if turn % 10 == 0:
            # Now and then the replica is sure to have it: asked, it serves the read.
            replica.catch_up()
        history = await client.get(
            f"/v1/conversations/{conversation_id}/messages", headers={TOKEN: token}
        )
        assert history.status_code == 200
        assert history.json()["items"][-1]["content"] == f"turn {turn}"
        count = await client.get(f"/v1/conversations/{conversation_id}", headers={TOKEN: token})
        assert count.json()["message_count"] == turn + 1
    # Both servers took part: the replica once it had caught up, the primary before.
    assert routed.replicas[0].reads >= 30
    assert routed.primary_reads + routed.replicas[0].reads == 300


async def test_reads_without_a_token_reach_the_replica(
    client: Client, app: Litestar, paused: StreamingReplica
) -> None:
    created = await client.post("/v1/conversations", json={"title": "after the pause"})
    assert created.status_code == 201
    path = f"/v1/conversations/{created.json()['id']}"
    # Only the replica can miss it: the read went there.
    assert_problem(await client.get(path), 404, field="conversation_id")
    assert (await client.get("/v1/conversations/count")).json()["count"] == 0
    assert replicas_of(app).replicas[0].reads == 2
    # Sent back, the token takes the read to the primary.
    seen = await client.get(path, headers={TOKEN: created.headers[TOKEN]})
    assert seen.status_code == 200
    assert seen.json()["title"] == "after the pause"
    assert replicas_of(app).primary_reads == 1


async def test_a_lagging_replica_sends_every_read_to_the_primary(
    database_url: str, replica: StreamingReplica, paused: StreamingReplica
) -> None:
    settings = replica_settings(
        database_url,
        replica.same_database_on_replica(database_url),
        replica_max_lag_seconds="0.2",
    )
    key = await create_key(database_url, ALL_PERMISSIONS)
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        routed = replicas_of(app)
        ids = []
        for title in ("one", "two", "three"):
            created = await client.post("/v1/conversations", json={"title": title})
            ids.append(created.json()["id"])
            await asyncio.sleep(0.15)
        # Written more than 0.2 s ago and not replayed: too far behind for any read.
        await asyncio.sleep(0.1)
        assert not routed.replicas[0].usable
        assert routed.replicas[0].lag_seconds > 0.2
        for conversation_id in ids:
            assert (await client.get(f"/v1/conversations/{conversation_id}")).status_code == 200
        assert (await client.get("/v1/conversations/count")).json()["count"] == 3
        assert (routed.primary_reads, routed.replicas[0].reads) == (4, 0)


async def test_replicas_that_are_down_or_no_replica_serve_no_reads(
    database_url: str, replica: StreamingReplica
) -> None:
    down = f"postgresql://nobody@127.0.0.1:{_free_port()}/nothing"
    # The primary itself (no standby), and a database the replica does not have.
    missing = replica.url("no_such_database")
    settings = replica_settings(database_url, down, database_url, missing, connect_timeout="1")
    key = await create_key(database_url, ALL_PERMISSIONS)
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        created = await client.post("/v1/conversations", json={})
        for _ in range(4):
            assert (await client.get(f"/v1/conversations/{created.json()['id']}")).is_success
        routed = replicas_of(app)
        assert [r.reachable for r in routed.replicas] == [False, False, False]
        assert (routed.primary_reads, [r.reads for r in routed.replicas]) == (4, [0, 0, 0])


async def test_reads_take_turns_over_the_replicas(
    database_url: str, replica: StreamingReplica
) -> None:
    on_replica = replica.same_database_on_replica(database_url)
    settings = replica_settings(database_url, on_replica, on_replica)
    key = await create_key(database_url, ALL_PERMISSIONS)
    replica.catch_up()
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        for _ in range(6):
            assert (await client.get("/v1/conversations")).status_code == 200
        assert [r.reads for r in replicas_of(app).replicas] == [3, 3]


async def test_every_read_endpoint_is_served_by_a_replica(
    client: Client, app: Litestar, replica: StreamingReplica
) -> None:
    conversation = (await client.post("/v1/conversations", json={"title": "t"})).json()["id"]
    path = f"/v1/conversations/{conversation}"
    appended = await client.post(f"{path}/messages", json=messages_body("find me"))
    message = appended.json()["items"][0]["id"]
    upload = await client.post(f"{path}/files", params={"filename": "a.txt"}, content=b"hello")
    file_id = upload.json()["id"]
    assert (await client.put("/v1/prompts/greet", json={"content": "hi"})).status_code == 201
    replica.catch_up()
    # The app's poll (every 0.02 s) sees it too.
    await asyncio.sleep(0.2)
    reads = [
        "/v1/conversations",
        "/v1/conversations/count",
        path,
        f"{path}/messages",
        f"{path}/messages/{message}",
        f"{path}/files",
        f"{path}/files/{file_id}",
        f"{path}/files/{file_id}/content",
        "/v1/prompts",
        "/v1/prompts/greet",
        "/v1/prompts/greet/versions",
        "/v1/search?q=find",
    ]
    for read in reads:
        answer = await client.get(read)
        assert answer.status_code == 200, (read, answer.text)
    assert (await client.get("/v1/search?q=find")).json()["items"]
    assert (replicas_of(app).primary_reads, replicas_of(app).replicas[0].reads) == (0, 13)


async def test_every_successful_write_and_only_a_write_carries_a_token(client: Client) -> None:
    created = await client.post("/v1/conversations", json={})
    conversation_id = created.json()["id"]
    upload = await client.post(
        f"/v1/conversations/{conversation_id}/files",
        params={"filename": "a.txt"},
        content=b"hello",
        headers={"Content-Type": "text/plain"},
    )
    patched = await client.patch(f"/v1/conversations/{conversation_id}", json={"title": "t"})
    deleted = await client.delete(f"/v1/conversations/{conversation_id}")
    writes = [created, upload, patched, deleted]
    assert [write.status_code for write in writes] == [201, 201, 200, 204]
    tokens = [write.headers[TOKEN] for write in writes]
    positions = [int(high, 16) << 32 | int(low, 16) for high, low in (t.split("/") for t in tokens)]
    assert positions == sorted(positions)
    refused = await client.patch(f"/v1/conversations/{conversation_id}", json={"title": "t"})
    assert refused.status_code == 404
    assert TOKEN not in refused.headers
    assert TOKEN not in (await client.get("/v1/conversations")).headers


@pytest.mark.parametrize("token", ["", "1", "0/", "/1", "g/1", "1/123456789", "1/2/3", "-1/0"])
async def test_a_malformed_token_is_a_422_naming_the_header(client: Client, token: str) -> None:
    answer = await client.get("/v1/conversations", headers={TOKEN: token})
    assert_problem(answer, 422, field=TOKEN)


async def test_a_token_from_the_future_reads_the_primary(client: Client, app: Litestar) -> None:
    answer = await client.get("/v1/conversations", headers={TOKEN: "FFFFFFFF/FFFFFFFF"})
    assert answer.status_code == 200
    assert replicas_of(app).primary_reads == 1


async def test_the_openapi_document_shows_the_token(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    listing = document["paths"]["/v1/conversations"]
    assert TOKEN in [parameter["name"] for parameter in listing["get"]["parameters"]]
    assert TOKEN in listing["post"]["responses"]["201"]["headers"]


async def test_a_replica_url_of_another_scheme_stops_the_start(database_url: str) -> None:
    settings = replica_settings(database_url, "mysql://somewhere/db")
    with pytest.raises(ExceptionGroup) as raised:
        async with AsyncTestClient(app=create_app(settings)):
            pass
    assert raised.group_contains(
        DatabaseUrlError, match="CHATKEEP_REPLICA_URLS, replica 1: scheme 'mysql'"
    )


async def test_metrics_sample_the_replicas_pools_too(
    database_url: str, replica: StreamingReplica
) -> None:
    token = "metrics-token-" + "x" * 16
    settings = replica_settings(
        database_url, replica.same_database_on_replica(database_url), metrics_token=token
    )
    replica.catch_up()
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        scraped = await test_client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    assert 'pool="primary"' in scraped.text
    assert 'pool="replica1"' in scraped.text
