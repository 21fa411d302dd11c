"""Two `chatkeep serve` instances on one database behind HAProxy (README "Running several
instances"): writers and readers on both, live events crossing instances, one instance killed
(SIGKILL) and restarted mid-load, the other stopped gracefully (SIGTERM) and restarted.

What must hold: every acknowledged append (201) is stored; no 5xx but the killed instance's
in-flight requests; a draining instance says so on /health/ready, is taken out by the balancer,
and finishes what it had in flight; an event stream through the balancer resumes across both
restarts (Last-Event-ID) and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.balancer import Balancer, Instance, balanced
from tests.helpers import bearer, messages_body, new_conversation
from tests.sse import open_stream

# Longer than HAProxy takes to see an instance go (tests/balancer.py: 3 checks 0.3 s apart).
DRAIN_SECONDS = 3.0
SETTINGS = {
    "drain_seconds": str(DRAIN_SECONDS),
    "events_heartbeat_seconds": "1",
    "pool_min_size": "1",
    "pool_max_size": "5",
}
WRITERS = 4
READERS = 2


def events_url(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/events"


@dataclass
class Outcome:
    what: str
    started: float
    ended: float
    # None: no response at all (the connection failed or was cut).
    status: int | None
    # The start of a 5xx's body: whose answer it was (HAProxy's or the service's).
    detail: str = ""


@dataclass
class Load:
    """Writers and readers through the balancer, each request's outcome recorded."""

    client: httpx.AsyncClient
    conversations: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: dict[str, list[str]] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def request(self, method: str, url: str, **options: Any) -> int | None:
        started = time.monotonic()
        status: int | None = None
        detail = ""
        try:
            response = await self.client.request(method, url, **options)
            status = response.status_code
            detail = response.text[:200] if status >= 500 else ""
        except httpx.TransportError as exc:
            detail = repr(exc)
        self.outcomes.append(Outcome(f"{method} {url}", started, time.monotonic(), status, detail))
        return status

    async def write(self, conversation_id: str) -> None:
        url = f"/v1/conversations/{conversation_id}/messages"
        acknowledged = self.acknowledged.setdefault(conversation_id, [])
        number = 0
        while not self.stopping.is_set():
            message_id = str(uuid.uuid4())
            body = messages_body(f"message {number}", id=message_id)
            # Until it is acknowledged: the same id again, which stores it at most once.
            while (status := await self.request("POST", url, json=body)) != 201:
                assert status is None or status >= 500, f"append answered {status}"
                await asyncio.sleep(0.05)
            acknowledged.append(message_id)
            number += 1

    async def read(self, offset: int) -> None:
        turn = offset
        while not self.stopping.is_set():
            conversation_id = self.conversations[turn % len(self.conversations)]
            status = await self.request("GET", f"/v1/conversations/{conversation_id}/messages")
            assert status is None or status == 200 or status >= 500, f"read answered {status}"
            turn += 1


@dataclass
class Follower:
    """One conversation's event stream through the balancer, reconnecting with Last-Event-ID
    whenever it ends, as EventSource does."""

    client: httpx.AsyncClient
    conversation_id: str
    created: list[str] = field(default_factory=list)
    last_id: int = 0
    reconnections: int = 0
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            headers = {"Last-Event-ID": str(self.last_id)}
            try:
                async with open_stream(
                    self.client, events_url(self.conversation_id), headers=headers
                ) as stream:
                    if stream.response.status_code == 200:
                        while (event := await stream.next(30)) is not None:
                            self.take(event.event, event.id, event.data)
            except httpx.TransportError:
                pass
            self.reconnections += 1
            await asyncio.sleep(0.1)

    def take(self, kind: str | None, event_id: str | None, data: str) -> None:
        if event_id is not None:
            assert int(event_id) > self.last_id, "an event came twice or out of order"
            self.last_id = int(event_id)
        if kind == "message.created":
            self.created.append(json.loads(data)["id"])
            self.progressed.set()

    async def wait_for(self, message_ids: set[str], seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while not message_ids <= set(self.created):
                self.progressed.clear()
                await self.progressed.wait()


@pytest.fixture
async def cluster(
    database_url: str,
) -> AsyncIterator[tuple[Balancer, list[Instance]]]:
    with balanced(database_url, SETTINGS) as (balancer, instances):
        yield balancer, instances


async def test_events_cross_instances(
    cluster: tuple[Balancer, list[Instance]], api_key: str
) -> None:
    """A write served by one instance reaches the streams open on the other."""
    _, (first, second) = cluster
    async with (
        httpx.AsyncClient(base_url=first.base, headers=bearer(api_key), timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.base, headers=bearer(api_key), timeout=30) as on_second,
    ):
        for subscriber, writer in ((on_first, on_second), (on_second, on_first)):
            conversation_id, url = new_conversation()
            assert (await writer.post(url, json=messages_body("first"))).status_code == 201
            async with open_stream(subscriber, events_url(conversation_id)) as stream:
                assert (await stream.next()).retry is not None  # type: ignore[union-attr]
                message_id = str(uuid.uuid4())
                response = await writer.post(url, json=messages_body("second", id=message_id))
                assert response.status_code == 201
                event = await stream.next_event()
                assert event is not None
                assert event.event == "message.created"
                assert event.json()["id"] == message_id


async def held_upload(
    client: httpx.AsyncClient, url: str, released: asyncio.Event, message_id: str
) -> httpx.Response:
    """An append whose body arrives in two parts, the second once ``released``: a request in
    flight for as long as the test likes."""
    body = httpx.Request("POST", "/", json=messages_body("in flight", id=message_id)).content

    async def parts() -> AsyncIterator[bytes]:
        yield body[:10]
        await released.wait()
        yield body[10:]

    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return await client.post(url, content=parts(), headers=headers)


async def test_kill_and_drain_under_load(
    cluster: tuple[Balancer, list[Instance]], api_key: str
) -> None:
    balancer, (first, second) = cluster
    conversations = [str(uuid.uuid4()) for _ in range(WRITERS)]
    async with (
        httpx.AsyncClient(base_url=balancer.base, headers=bearer(api_key), timeout=30) as client,
        httpx.AsyncClient(base_url=balancer.base, headers=bearer(api_key), timeout=60) as events,
        httpx.AsyncClient(base_url=second.base, headers=bearer(api_key), timeout=60) as direct,
    ):
        for conversation_id in conversations:
            url = f"/v1/conversations/{conversation_id}/messages"
            assert (await client.post(url, json=messages_body("start"))).status_code == 201
        load = Load(client, conversations)
        follower = Follower(events, conversations[0])
        tasks = [asyncio.create_task(load.write(c)) for c in conversations]
        tasks += [asyncio.create_task(load.read(n)) for n in range(READERS)]
        following = asyncio.create_task(follower.run())
        await asyncio.sleep(2)

        # The first instance dies mid-load and comes back (and takes its share again).
        assert balancer.answered(first.name) > 0
        killed_from = time.monotonic()
        first.kill()
        killed_until = time.monotonic()
        await asyncio.to_thread(balancer.wait_for, first.name, "DOWN")
        await asyncio.to_thread(first.start)
        await asyncio.to_thread(balancer.wait_for, first.name, "UP")
        answered = balancer.answered(first.name)
        await asyncio.sleep(1)
        assert balancer.answered(first.name) > answered

        # The second one is stopped as an orchestrator stops it, with a request in flight.
        released = asyncio.Event()
        held_id = str(uuid.uuid4())
        held = asyncio.create_task(
            held_upload(direct, f"/v1/conversations/{conversations[1]}/messages", released, held_id)
        )
        await asyncio.sleep(0.5)
        second.terminate()
        draining = await asyncio.to_thread(wait_draining, second)
        assert draining["status"] == "draining", draining
        await asyncio.to_thread(balancer.wait_for, second.name, "DOWN", DRAIN_SECONDS * 2)
        await asyncio.sleep(DRAIN_SECONDS)
        with pytest.raises(httpx.ConnectError):  # the drain is over: it accepts no more...
            second.ready()
        released.set()  # ...but finishes what it had in flight
        assert (await held).status_code == 201
        code, output = await asyncio.to_thread(second.wait_exit)
        assert code == 0, output
        assert "draining" in output
        await asyncio.to_thread(second.start)
        await asyncio.to_thread(balancer.wait_for, second.name, "UP")
        await asyncio.sleep(1)

        load.stopping.set()
        await asyncio.gather(*tasks)

        # Every acknowledged append is there, once, and the follower saw each of its own.
        for conversation_id in conversations:
            stored = await stored_ids(client, conversation_id)
            assert len(stored) == len(set(stored))
            acknowledged = load.acknowledged[conversation_id]
            assert set(acknowledged) <= set(stored)
            assert len(acknowledged) >= 5, "the load hardly ran"
        assert held_id in await stored_ids(client, conversations[1])
        await follower.wait_for(set(load.acknowledged[conversations[0]]), 10)
        following.cancel()
        assert follower.reconnections >= 1

    # 5xx and cut connections: only requests in flight when the first instance was killed.
    failed = [o for o in load.outcomes if o.status is None or o.status >= 500]
    stray = [o for o in failed if not (o.started <= killed_until and o.ended >= killed_from)]
    assert stray == [], stray
    assert len(failed) <= WRITERS + READERS, failed
    assert sum(o.status == 201 for o in load.outcomes) > 50


async def stored_ids(client: httpx.AsyncClient, conversation_id: str) -> list[str]:
    response = await client.get(
        f"/v1/conversations/{conversation_id}/messages", params={"limit": "1000"}
    )
    assert response.status_code == 200
    return [item["id"] for item in response.json()["items"]]


def wait_draining(instance: Instance) -> dict[str, object]:
    """/health/ready once the instance has taken the SIGTERM in."""
    deadline = time.monotonic() + 5
    while True:
        response = instance.ready()
        if response.status_code == 503 or time.monotonic() > deadline:
            assert response.status_code == 503, response.text
            body: dict[str, object] = response.json()
            return body
        time.sleep(0.05)
