"""Live updates (README "Live updates") against a real server with two worker processes, so a
write served by one worker reaches subscribers of the other through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import (
    JWT_SECRET,
    assert_problem,
    bearer,
    messages_body,
    new_conversation,
    user_token,
)
from tests.live import live_service
from tests.sse import Event, EventStream, open_stream, worker_serving


@asynccontextmanager
async def two_workers(
    database_url: str, api_key: str, **settings: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client with every permission on a two-worker server, and the server process. Each
    request may be served by either worker (a client per request: no connection reuse)."""
    settings = {"jwt_secret": JWT_SECRET, "allow_anonymous": "true", **settings}
    with live_service(database_url, workers="2", **settings) as (base, process):
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=base, headers=bearer(api_key), timeout=30, limits=limits
        ) as client:
            yield client, process


async def append(client: httpx.AsyncClient, url: str, *contents: str, **fields: Any) -> Any:
    response = await client.post(url, json=messages_body(*contents, **fields))
    assert response.status_code == 201, response.text
    return response.json()["items"]


async def drain(stream: EventStream) -> None:
    while await stream.next() is not None:
        pass


def events_url(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/events"


async def test_events_arrive_in_order_whichever_worker_wrote(
    database_url: str, api_key: str
) -> None:
    async with two_workers(database_url, api_key) as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "first")
        async with open_stream(client, events_url(conversation_id)) as stream:
            hello = await stream.next()
            assert hello is not None
            assert hello.retry == 1000
            assert stream.response.headers["content-type"].startswith("text/event-stream")
            # Concurrent appends, each on a connection of its own: both workers write.
            await asyncio.gather(*(append(client, url, f"m{i}") for i in range(20)))
            events = await stream.take(20)
        assert [event.event for event in events] == ["message.created"] * 20
        # Ids are the log's seqs: 1 was the first append's, before the stream opened.
        assert [int(event.id or 0) for event in events] == list(range(2, 22))
        seqs = [event.json()["seq"] for event in events]
        assert seqs == sorted(seqs) == list(range(2, 22))
        assert {event.json()["content"] for event in events} == {f"m{i}" for i in range(20)}


async def test_a_client_resumes_with_last_event_id_without_gap_or_duplicate(
    database_url: str, api_key: str
) -> None:
    async with two_workers(database_url, api_key) as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "zero")
        async with open_stream(client, events_url(conversation_id)) as stream:
            await append(client, url, "one", "two")
            seen = await stream.take(2)
        last_id = seen[-1].id
        assert last_id == "3"
        # Away: messages come, one is edited, one deleted, the conversation retitled.
        three, four = await append(client, url, "three", "four")
        edited = await client.patch(f"{url}/{three['id']}", json={"content": "three!"})
        assert edited.status_code == 200
        assert (await client.delete(f"{url}/{four['id']}")).status_code == 204
        retitled = await client.patch(f"/v1/conversations/{conversation_id}", json={"title": "t"})
        assert retitled.status_code == 200
        headers = {"Last-Event-ID": last_id}
        async with open_stream(client, events_url(conversation_id), headers=headers) as stream:
            missed = await stream.take(4)
            await append(client, url, "five")
            live = await stream.take(1)
        # The replay reads rows as they are now: three as edited; four is gone, so its creation
        # (event 5) is left out and only its deletion told.
        assert [(e.id, e.event) for e in [*missed, *live]] == [
            ("4", "message.created"),
            ("6", "message.updated"),
            ("7", "message.deleted"),
            ("8", "conversation.updated"),
            ("9", "message.created"),
        ]
        assert missed[0].json()["content"] == missed[1].json()["content"] == "three!"
        assert missed[2].json() == {"id": four["id"], "conversation_id": conversation_id, "seq": 5}
        assert missed[3].json()["title"] == "t"
        assert live[0].json()["content"] == "five"
        # ?after= does the same without the header; a Last-Event-ID wins over it.
        async with open_stream(client, f"{events_url(conversation_id)}?after=7") as stream:
            assert [e.id for e in await stream.take(2)] == ["8", "9"]
        async with open_stream(
            client, f"{events_url(conversation_id)}?after=1", headers={"Last-Event-ID": "8"}
        ) as stream:
            assert [e.id for e in await stream.take(1)] == ["9"]


async def test_a_stale_or_pruned_position_asks_the_client_to_reload(
    database_url: str, api_key: str, db: psycopg.Connection
) -> None:
    async with two_workers(database_url, api_key) as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "a", "b", "c")
        # An id the log never held (a conversation deleted and created again): reset, then live.
        async with open_stream(client, f"{events_url(conversation_id)}?after=99") as stream:
            reset = await stream.next_event()
            assert reset is not None
            assert (reset.event, reset.id) == ("reset", "3")
            await append(client, url, "d")
            assert [e.id for e in await stream.take(1)] == ["4"]
        # Events the log no longer keeps: reset, then what it has.
        db.execute("DELETE FROM conversation_events WHERE seq <= 2")
        async with open_stream(client, f"{events_url(conversation_id)}?after=1") as stream:
            events = await stream.take(3)
        assert [(e.event, e.id) for e in events] == [
            ("reset", "2"),
            ("message.created", "3"),
            ("message.created", "4"),
        ]


async def test_a_killed_worker_costs_the_client_nothing_but_a_reconnection(
    database_url: str, api_key: str
) -> None:
    async with two_workers(database_url, api_key) as (client, process):
        conversation_id, url = new_conversation()
        await append(client, url, "before")
        async with open_stream(client, events_url(conversation_id)) as stream:
            await append(client, url, "seen")
            (seen,) = await stream.take(1)
            _, port = stream.server_port()
            os.kill(worker_serving(process.pid, port), signal.SIGKILL)
            with pytest.raises((httpx.HTTPError, asyncio.TimeoutError)):
                await drain(stream)
        # Written while the client was away (by the surviving worker).
        await append(client, url, "while away 1", "while away 2")
        headers = {"Last-Event-ID": seen.id or ""}
        async with open_stream(client, events_url(conversation_id), headers=headers) as stream:
            resumed = await stream.take(2)
            await append(client, url, "after")
            resumed += await stream.take(1)
        assert [e.json()["content"] for e in resumed] == ["while away 1", "while away 2", "after"]
        assert [e.id for e in resumed] == ["3", "4", "5"]


async def test_a_slow_reader_is_cut_off_without_slowing_writers_or_other_readers(
    database_url: str, api_key: str
) -> None:
    big = "x" * 200_000
    appends = 60
    async with two_workers(database_url, api_key, events_buffer="16") as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "start")
        async with (
            open_stream(client, events_url(conversation_id)) as slow,
            open_stream(client, events_url(conversation_id)) as fast,
        ):
            await slow.next()  # open, then reads nothing for a while
            await fast.next()
            fast_reading = asyncio.create_task(fast.take(appends, seconds=30))
            started = time.monotonic()
            # Far more than the slow reader's socket buffers and its 16 frames hold.
            for _ in range(appends):
                await append(client, url, big)
            writing = time.monotonic() - started
            fast_events = await fast_reading
            assert [e.id for e in fast_events] == [str(seq) for seq in range(2, appends + 2)]
            # The slow reader gets what was on its way, then its stream ends: not all of it.
            received = []
            while (event := await slow.next_event()) is not None:
                received.append(event)
            assert len(received) < appends
        assert writing < 30, writing
        # It resumes from the log where it was cut off.
        last = int(slow.last_id or "1")
        async with open_stream(
            client, events_url(conversation_id), headers={"Last-Event-ID": str(last)}
        ) as resumed:
            rest = await resumed.take(appends + 1 - last)
        assert [int(e.id or 0) for e in rest] == list(range(last + 1, appends + 2))


async def test_streams_follow_the_access_rules_of_reads(database_url: str, api_key: str) -> None:
    async with two_workers(database_url, api_key) as (client, _):
        alice = bearer(user_token("alice"))
        conversation_id, url = new_conversation()
        assert (await client.post(url, json=messages_body("hi"), headers=alice)).status_code == 201
        bob = bearer(user_token("bob"))
        # Someone else's conversation is a 404, as for reads; so is a missing one.
        assert_problem(await client.get(events_url(conversation_id), headers=bob), 404)
        assert_problem(await client.get(events_url(str(uuid.uuid4()))), 404, "conversation_id")
        assert_problem(
            await client.get(events_url(conversation_id), headers={"Authorization": ""}), 401
        )
        assert_problem(
            await client.get(events_url(conversation_id), headers={"Last-Event-ID": "x"}), 422
        )
        # By external id, for its owner.
        named = await client.post(
            "/v1/conversations/ext:chat-7/messages", json=messages_body("x"), headers=alice
        )
        assert named.status_code == 201
        async with open_stream(client, events_url("ext:chat-7"), headers=alice) as stream:
            await client.post(
                "/v1/conversations/ext:chat-7/messages", json=messages_body("y"), headers=alice
            )
            (event,) = await stream.take(1)
            assert event.json()["content"] == "y"
        # A deleted conversation ends its streams.
        async with open_stream(client, events_url(conversation_id), headers=alice) as stream:
            await stream.next()
            assert (await client.delete(f"/v1/conversations/{conversation_id}")).status_code == 204
            deleted = await stream.next_event()
            assert deleted is not None
            assert deleted.event == "conversation.deleted"
            assert deleted.json() == {"id": conversation_id}
            assert await stream.next_event() is None


async def test_an_owners_stream_follows_its_conversation_list(
    database_url: str, api_key: str
) -> None:
    async with two_workers(database_url, api_key) as (client, _):
        alice = bearer(user_token("alice"))
        assert_problem(await client.get("/v1/events"), 422, "user_id")
        assert_problem(await client.get("/v1/events?user_id=bob", headers=alice), 403, "user_id")
        async with (
            open_stream(client, "/v1/events", headers=alice) as mine,
            open_stream(client, "/v1/events?user_id=alice") as keys,
        ):
            for stream in (mine, keys):
                ready = await stream.next_event()
                assert ready is not None
                assert ready.event == "ready"
            conversation_id, url = new_conversation()
            created = await client.post(url, json={**messages_body("hi"), "user_id": "alice"})
            assert created.status_code == 201
            # Someone else's conversations are not alice's news.
            await append(client, new_conversation()[1], "nobody's")
            await client.post(new_conversation()[1], json={**messages_body("b"), "user_id": "bob"})
            await client.patch(f"/v1/conversations/{conversation_id}", json={"title": "Plans"})
            await client.delete(f"/v1/conversations/{conversation_id}")
            for stream in (mine, keys):
                events: list[Event] = []
                while not events or events[-1].event != "conversation.deleted":
                    event = await stream.next_event()
                    assert event is not None
                    events.append(event)
                assert events[0].event == "conversation.created"
                assert {e.event for e in events[1:-1]} == {"conversation.updated"}
                assert {e.json()["id"] for e in events} == {conversation_id}
                assert any(e.json()["title"] == "Plans" for e in events[1:-1])
                assert all(e.id is None for e in events)


async def test_a_reply_streamed_into_an_in_progress_message(
    database_url: str, api_key: str
) -> None:
    async with two_workers(database_url, api_key) as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "tell me a story")
        async with open_stream(client, events_url(conversation_id)) as stream:
            (reply,) = await append(client, url, "", role="assistant", status="in_progress")
            assert reply["status"] == "in_progress"
            append_url = f"{url}/{reply['id']}/append"
            for chunk in ("Once ", "upon ", "a time"):
                response = await client.post(append_url, json={"content": chunk})
                assert response.status_code == 200, response.text
            # Reads show it in progress too, as far as it has come.
            read = (await client.get(f"{url}/{reply['id']}")).json()
            assert (read["content"], read["status"]) == ("Once upon a time", "in_progress")
            page = (await client.get(url)).json()["items"]
            assert [m["status"] for m in page] == ["complete", "in_progress"]
            done = await client.post(append_url, json={"content": ".", "status": "complete"})
            assert done.json()["content"] == "Once upon a time."
            assert done.json()["status"] == "complete"
            events = await stream.take(5)
        assert events[0].event == "message.created"
        assert [e.event for e in events[1:]] == ["message.updated"] * 4
        # Each event carries the message as it is when the worker reads it: the text grows,
        # event by event (two appends read together show the same text twice), to the end.
        contents = [e.json()["content"] for e in events]
        assert all(a == b[: len(a)] for a, b in itertools.pairwise(contents))
        assert contents[-1] == "Once upon a time."
        assert events[-1].json()["status"] == "complete"
        assert {e.json()["status"] for e in events[:-1]} <= {"in_progress", "complete"}
        # A complete message takes no more.
        assert_problem(await client.post(append_url, json={"content": "!"}), 409, "status")
        read = await client.get(f"{url}/{reply['id']}")
        assert read.json()["content"] == "Once upon a time."
        assert_problem(
            await client.post(f"{url}/{uuid.uuid4()}/append", json={"content": "!"}),
            404,
            "message_id",
        )


async def test_events_close_behind_one_another_go_out_together(
    database_url: str, api_key: str
) -> None:
    """An event after a quiet spell goes out at once; those within CHATKEEP_EVENTS_COALESCE_MS
    of it wait for the interval's end and come together, in order."""
    async with two_workers(database_url, api_key, events_coalesce_ms="1500") as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "hello")
        async with open_stream(client, events_url(conversation_id)) as stream:
            await append(client, url, "first")
            (first,) = await stream.take(1)
            first_at = time.monotonic()
            await append(client, url, "second")
            await append(client, url, "third")
            later = await stream.take(2)
            later_at = time.monotonic()
        assert [e.json()["content"] for e in [first, *later]] == ["first", "second", "third"]
        assert [e.id for e in [first, *later]] == ["2", "3", "4"]
        # Held back until the interval after the first hand-over ended (a slow machine only
        # makes this later).
        assert later_at - first_at > 1.0


async def test_heartbeats_keep_an_idle_stream_open(database_url: str, api_key: str) -> None:
    async with two_workers(database_url, api_key, events_heartbeat_seconds="0.2") as (client, _):
        conversation_id, url = new_conversation()
        await append(client, url, "hello")
        async with open_stream(client, events_url(conversation_id)) as stream:
            await stream.next()
            beat = await stream.next(seconds=5)
            assert beat is not None
            assert beat.comments == ["heartbeat"]
            assert beat.event is None


async def test_shutdown_ends_open_streams(database_url: str, api_key: str) -> None:
    async with two_workers(database_url, api_key) as (client, process):
        conversation_id, url = new_conversation()
        await append(client, url, "hello")
        async with open_stream(client, events_url(conversation_id)) as stream:
            await stream.next()
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert await stream.next(seconds=10) is None
        await asyncio.to_thread(process.wait, 30)
        assert time.monotonic() - started < 10
