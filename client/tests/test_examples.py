"""The example applications' stores (examples/), each against a real server and against the
in-memory fake: what they promise their applications holds on both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient

from backends import Backend, LiveServer, session_id, unique
from chatkeep_client import Chatkeep, NewMessage, ext
from examples.conversation_repository import (
    ConversationEntity,
    ConversationRepository,
    StaleConversation,
    in_memory_repository,
)
from examples.form_sessions import FormSessions, FormState
from examples.rag_memory import ConversationMemory
from examples.web_backend import create_app

# --- the RAG assistant's memory ------------------------------------------------------------------


async def test_rag_memory_sessions_and_history(backend: Backend) -> None:
    async with backend.async_client() as ck:
        memory = ConversationMemory(ck, app=unique("rag-"))
        neighbour = ConversationMemory(ck, app=unique("rag-"))
        await neighbour.create_session("another application's")
        first, second, third = [await memory.create_session(f"topic {n}") for n in range(3)]
        said = await memory.add_message(first, "user", "What is RAG?", {"sources": ["doc-1"]})
        await memory.add_message(first, "assistant", "Retrieval, then generation.")
        history = await memory.get_history(first)
        assert [(m["role"], m["content"]) for m in history] == [
            ("user", "What is RAG?"),
            ("assistant", "Retrieval, then generation."),
        ]
        assert (history[0]["id"], history[0]["metadata"]) == (said, {"sources": ["doc-1"]})
        assert [m["content"] for m in await memory.get_history(first, limit=1)] == [
            "Retrieval, then generation."
        ]
        # Most recently active first; offsets walk on.
        listed = await memory.get_sessions(limit=2)
        assert [s["id"] for s in listed] == [first, third]
        assert [s["id"] for s in await memory.get_sessions(limit=2, offset=2)] == [second]
        assert await memory.get_sessions(limit=5, offset=3) == []
        assert await memory.update_session_title(second, "renamed") is True
        session = await memory.get_session(second)
        assert session is not None
        assert (session["title"], session["message_count"]) == ("renamed", 0)
        unknown = str(uuid.uuid4())
        assert await memory.get_session(unknown) is None
        assert await memory.update_session_title(unknown, "x") is False
        assert await memory.get_history(unknown) == []
        assert await memory.delete_session(third) is True
        assert await memory.delete_session(third) is False
        assert await memory.clear_all() == 2
        assert await memory.get_sessions() == []
        assert len(await neighbour.get_sessions()) == 1


async def test_rag_memory_for_one_user_clears_only_theirs(backend: Backend) -> None:
    app = unique("rag-")
    async with backend.async_client() as ck:
        ann = ConversationMemory(ck, app=app, user_id=unique("ann-"))
        ben = ConversationMemory(ck, app=app, user_id=unique("ben-"))
        for memory in (ann, ben, ann):
            await memory.create_session()
        assert (len(await ann.get_sessions()), len(await ben.get_sessions())) == (2, 1)
        assert await ann.clear_all() == 2
        assert len(await ben.get_sessions()) == 1


# --- the forms assistant's sessions --------------------------------------------------------------


REQUIRED = ["name", "city", "zip"]


def test_form_state_follows_each_turn(backend: Backend) -> None:
    form = FormSessions(backend.client, unique("form-"), REQUIRED)
    session = unique("applicant-")
    started = form.start(session, user_id=unique("u"))
    assert (started.status, started.fields, started.progress) == ("started", {}, 0.0)
    after = form.record_turn(session, "I'm Ann.", "Which city?", {"name": "Ann"})
    assert (after.status, after.fields, after.progress) == ("filling", {"name": "Ann"}, 1 / 3)
    assert form.load(session) == after
    done = form.record_turn(session, "Paris 75001", "Thanks!", {"city": "Paris", "zip": "75001"})
    assert (done.status, done.progress) == ("complete", 1.0)
    assert done.fields == {"name": "Ann", "city": "Paris", "zip": "75001"}
    assert form.load(session) == done
    stored = backend.client.messages.list(ext(session)).items
    assert [m.content for m in stored] == ["I'm Ann.", "Which city?", "Paris 75001", "Thanks!"]


def test_concurrent_turns_on_one_form_lose_nothing(backend: Backend) -> None:
    form_id, session = unique("form-"), unique("applicant-")
    other = FormSessions(backend.client, form_id, REQUIRED)
    other.start(session)

    class Interrupted(FormSessions):
        """Another turn is stored between this one's read of the state and its write."""

        interrupted = False

        def load(self, session_id: str) -> FormState:
            state = super().load(session_id)
            if not self.interrupted:
                self.interrupted = True
                other.record_turn(session_id, "75001", "Noted.", {"zip": "75001"})
            return state

    result = Interrupted(backend.client, form_id, REQUIRED).record_turn(
        session, "Ann", "Noted.", {"name": "Ann"}
    )
    assert result.fields == {"zip": "75001", "name": "Ann"}
    assert (result.progress, result.status) == (2 / 3, "filling")
    assert other.load(session) == result
    # The refused write stored nothing: two turns, four messages.
    assert backend.client.conversations.get(ext(session)).message_count == 4
    assert other.set_status(session, "abandoned").status == "abandoned"


def test_a_forms_sessions_are_listed_and_counted(backend: Backend) -> None:
    form = FormSessions(backend.client, unique("form-"), REQUIRED)
    elsewhere = FormSessions(backend.client, unique("form-"), REQUIRED)
    sessions = [unique("applicant-") for _ in range(3)]
    for session in sessions:
        form.start(session)
    elsewhere.start(unique("applicant-"))
    form.record_turn(sessions[0], "all of it", "done", {"name": "A", "city": "B", "zip": "C"})
    form.set_status(sessions[1], "abandoned")
    assert [s.session_id for s in form.sessions()] == [sessions[1], sessions[0], sessions[2]]
    assert (form.count(), form.count("complete"), form.count("started")) == (3, 1, 1)
    assert [s.session_id for s in form.sessions("abandoned")] == [sessions[1]]


# --- the conversation repository and its in-memory twin ------------------------------------------


@pytest.fixture(params=["chatkeep", "in-memory"])
def repository(
    request: pytest.FixtureRequest,
) -> Iterator[ConversationRepository]:
    if request.param == "in-memory":
        yield in_memory_repository()
        return
    live: LiveServer = request.getfixturevalue("live_server")
    with Chatkeep(live.base_url, api_key=live.api_key) as chatkeep:
        yield ConversationRepository(chatkeep)


def test_repository_create_get_list_update_delete(repository: ConversationRepository) -> None:
    owner = unique("owner-")
    first = repository.create(ConversationEntity("Trip", owner=owner, tags={"kind": "travel"}))
    assert first.id is not None
    assert (first.title, first.owner, first.tags) == ("Trip", owner, {"kind": "travel"})
    assert repository.get(first.id) == first
    second = repository.create(ConversationEntity("Taxes", owner=owner))
    assert [c.id for c in repository.list_all(owner)] == [second.id, first.id]
    renamed = repository.update(replace(first, title="Trip to Lyon", tags={}))
    assert (renamed.title, renamed.tags) == ("Trip to Lyon", {})
    assert renamed.version > first.version
    with pytest.raises(StaleConversation):
        repository.update(replace(first, title="stale"))  # read before the rename
    assert repository.get(first.id) == renamed
    assert [c.title for c in repository.list_all(owner)] == ["Trip to Lyon", "Taxes"]
    assert repository.delete(first.id) is True
    assert repository.delete(first.id) is False
    assert repository.get(first.id) is None
    assert [c.id for c in repository.list_all(owner)] == [second.id]


def test_repository_create_with_a_chosen_id_is_repeatable(
    repository: ConversationRepository,
) -> None:
    chosen = ConversationEntity("Chosen", id=uuid.uuid4())
    created = repository.create(chosen)
    assert created.id == chosen.id
    assert repository.create(chosen) == created


# --- the web back end -----------------------------------------------------------------------------


async def test_web_back_end_serves_a_visitors_history_then_the_users(backend: Backend) -> None:
    visitor, chat = session_id(), unique("chat-")
    username, password = unique("reader-"), "correct horse battery"
    await asyncio.to_thread(backend.add_account, username, password)  # it runs its own loop
    # What the app's chat endpoint stored while the visitor read two chapters.
    backend.as_visitor(visitor).messages.append(
        ext(chat),
        [
            NewMessage(role="user", content="Who is the narrator?", topic="chapter-1"),
            NewMessage(role="assistant", content="Ishmael.", topic="chapter-1"),
            NewMessage(role="user", content="And the whale?", topic="chapter-2"),
        ],
    )
    wanted = {"session_id": chat, "chapter": "chapter-1"}
    async with AsyncTestClient(
        create_app(backend.async_client), base_url="https://app.test"
    ) as browser:
        read = await browser.get("/chat/history", params=wanted, headers={"X-Session-ID": visitor})
        assert read.status_code == 200
        assert [(m["role"], m["content"]) for m in read.json()] == [
            ("user", "Who is the narrator?"),
            ("assistant", "Ishmael."),
        ]
        stranger = {"X-Session-ID": session_id()}
        assert (await browser.get("/chat/history", params=wanted, headers=stranger)).json() == []
        assert (await browser.get("/chat/history", params=wanted)).status_code == 401

        refused = await browser.post(
            "/login", json={"username": username, "password": "wrong"}, headers=stranger
        )
        assert (refused.status_code, refused.json()["field"]) == (401, "password")
        login = await browser.post(
            "/login",
            json={"username": username, "password": password},
            headers={"X-Session-ID": visitor},
        )
        assert login.status_code == 204
        # Logged in (the cookie): the visitor's chat is the user's now, and the visitor's no more.
        as_user = await browser.get("/chat/history", params=wanted)
        assert [m["content"] for m in as_user.json()] == ["Who is the narrator?", "Ishmael."]
        assert backend.as_visitor(visitor).conversations.count() == 0
        forgotten = await browser.delete("/chat/history", params=wanted)
        assert forgotten.status_code == 204
        assert (await browser.get("/chat/history", params=wanted)).json() == []
        other = await browser.get(
            "/chat/history", params={"session_id": chat, "chapter": "chapter-2"}
        )
        assert [m["content"] for m in other.json()] == ["And the whale?"]
