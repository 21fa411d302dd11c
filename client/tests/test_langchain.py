"""ChatkeepChatMessageHistory under LangChain's own RunnableWithMessageHistory, driving one of
langchain-core's fake chat models against a real server; the history read back over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from backends import LiveServer, unique
from chatkeep_client import AsyncChatkeep, Chatkeep, ext
from chatkeep_client.langchain import ChatkeepChatMessageHistory
from chatkeep_client.testing import AsyncFakeChatkeep, FakeChatkeep

# LangChain deprecates RunnableWithMessageHistory (for LangGraph) until its 2.0; it is what
# applications using chat message histories run.
pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.deprecation.LangChainDeprecationWarning"
)


@pytest.fixture
def server(live_server: LiveServer) -> Iterator[Chatkeep]:
    with Chatkeep(live_server.base_url, api_key=live_server.api_key) as client:
        yield client


def stored(live: LiveServer, conversation: str, **params: str) -> list[dict[str, Any]]:
    """The conversation's messages as the service sends them, read with plain httpx."""
    response = httpx.get(
        f"{live.base_url}/v1/conversations/{conversation}/messages",
        params={"limit": "1000", **params},
        headers={"Authorization": f"Bearer {live.api_key}"},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def chain(history: Any, replies: list[str], seen: list[int]) -> RunnableWithMessageHistory:
    """A prompt with the history before the question, a fake model answering ``replies`` in
    turn; ``seen`` records how many messages the model was given each time."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )

    def record(value: Any) -> Any:
        seen.append(len(value.to_messages()))
        return value

    model: Runnable[Any, BaseMessage] = FakeListChatModel(responses=replies)
    return RunnableWithMessageHistory(
        prompt | RunnableLambda(record) | model,
        history,
        input_messages_key="question",
        history_messages_key="history",
    )


def test_runnable_with_message_history_keeps_each_session_in_chatkeep(
    server: Chatkeep, live_server: LiveServer
) -> None:
    owner = unique("lc-user-")
    seen: list[int] = []
    runnable = chain(
        lambda session_id: ChatkeepChatMessageHistory(
            ext(session_id), client=server, user_id=owner
        ),
        [f"answer {n}" for n in range(6)],
        seen,
    )
    sessions = [unique("lc-a-"), unique("lc-b-")]
    for turn in range(3):
        for session in sessions:
            config: RunnableConfig = {"configurable": {"session_id": session}}
            runnable.invoke({"question": f"{session} question {turn}"}, config=config)
    # The system prompt, the history so far, the question: each session saw only its own.
    assert seen == [2, 2, 4, 4, 6, 6]
    for index, session in enumerate(sessions):
        items = stored(live_server, f"ext:{session}")
        assert [(m["role"], m["content"]) for m in items] == [
            pair
            for turn in range(3)
            for pair in (
                ("user", f"{session} question {turn}"),
                ("assistant", f"answer {2 * turn + index}"),
            )
        ]
        assert [m["metadata"]["langchain"]["type"] for m in items] == ["human", "ai"] * 3
        conversation = server.conversations.get(ext(session))
        # One append per turn: the question and the answer in one request.
        assert (conversation.user_id, conversation.message_count) == (owner, 6)


async def test_async_runnable_with_an_async_client(live_server: LiveServer) -> None:
    seen: list[int] = []
    async with AsyncChatkeep(live_server.base_url, api_key=live_server.api_key) as client:
        runnable = chain(
            lambda session_id: ChatkeepChatMessageHistory(ext(session_id), client=client),
            ["one", "two", "three", "four"],
            seen,
        )
        first, second = unique("lc-async-"), unique("lc-async-")

        async def talk(session: str) -> None:
            for turn in range(2):
                await runnable.ainvoke(
                    {"question": f"q{turn}"}, config={"configurable": {"session_id": session}}
                )

        await asyncio.gather(talk(first), talk(second))
        history = ChatkeepChatMessageHistory(ext(first), client=client)
        read = await history.aget_messages()
    assert sorted(seen) == [2, 2, 4, 4]
    assert [type(m) for m in read] == [HumanMessage, AIMessage] * 2
    assert [m.content for m in read if isinstance(m, HumanMessage)] == ["q0", "q1"]
    for session in (first, second):
        assert len(stored(live_server, f"ext:{session}")) == 4


def every_kind() -> list[BaseMessage]:
    return [
        SystemMessage("You are terse.", id="s-1"),
        HumanMessage("Weather in Paris?", additional_kwargs={"locale": "fr"}, name="alice"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "weather", "args": {"city": "Paris"}, "id": "call-1", "type": "tool_call"}
            ],
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
            id="run-1",
        ),
        ToolMessage("18°C", tool_call_id="call-1", name="weather", artifact={"raw": 18}),
        FunctionMessage(content="sunny", name="sky"),
        ChatMessage(content="Nice day.", role="narrator"),
        HumanMessage(
            [
                {"type": "text", "text": "And this picture? "},
                {"type": "image_url", "image_url": {"url": "https://example.test/p.png"}},
            ]
        ),
        AIMessage("It is sunny.", additional_kwargs={"refusal": None, "extra": [1, 2]}),
    ]


def test_every_message_kind_round_trips_in_one_request(live_server: LiveServer) -> None:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    with Chatkeep(live_server.base_url, api_key=live_server.api_key, http_client=http) as client:
        session = unique("lc-kinds-")
        history = ChatkeepChatMessageHistory(ext(session), client=client)
        added = every_kind()
        history.add_messages(added)
        assert [request.method for request in sent] == ["POST"]  # the batch in one request
        read = history.messages
    http.close()
    assert len(read) == len(added)
    for before, after in zip(added, read, strict=True):
        assert type(after) is type(before)
        expected = before.model_dump()
        got = after.model_dump()
        if before.id is None:  # chatkeep's id for it
            assert got.pop("id")
            assert expected.pop("id") is None
        assert got == expected
    items = stored(live_server, f"ext:{session}")
    assert [m["role"] for m in items] == [
        "system",
        "user",
        "assistant",
        "tool",
        "function",
        "narrator",
        "user",
        "assistant",
    ]
    assert items[6]["content"] == "And this picture? "
    assert items[2]["metadata"]["langchain"]["tool_calls"][0]["args"] == {"city": "Paris"}
    assert items[3]["metadata"]["langchain"]["tool_call_id"] == "call-1"
    assert str(read[1].id) == items[1]["id"]


def test_topics_user_ids_and_clear(server: Chatkeep, live_server: LiveServer) -> None:
    session, owner = unique("lc-topics-"), unique("lc-owner-")
    intro = ChatkeepChatMessageHistory(ext(session), client=server, user_id=owner, topic="intro")
    main = ChatkeepChatMessageHistory(ext(session), client=server, user_id=owner, topic="main")
    assert intro.messages == []  # nothing stored yet: no conversation either
    intro.clear()
    intro.add_messages([HumanMessage("hi"), AIMessage("hello")])
    main.add_user_message("chapter one")
    main.add_ai_message("go on")
    assert [m.content for m in intro.messages] == ["hi", "hello"]
    assert [m.content for m in main.messages] == ["chapter one", "go on"]
    assert [m["topic"] for m in stored(live_server, f"ext:{session}")] == ["intro"] * 2 + [
        "main"
    ] * 2
    latest = ChatkeepChatMessageHistory(ext(session), client=server, max_messages=3)
    assert [m.content for m in latest.messages] == ["hello", "chapter one", "go on"]
    main.clear()
    assert main.messages == []
    assert [m.content for m in intro.messages] == ["hi", "hello"]
    assert server.conversations.get(ext(session)).user_id == owner


def test_another_applications_messages_read_by_their_role(server: Chatkeep) -> None:
    session = ext(unique("lc-other-"))
    server.messages.append(
        session,
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
            {"role": "tool", "content": "t", "metadata": {"tool_call_id": "c9"}},
            {"role": "critic", "content": "c"},
            {"role": "function", "content": "f", "metadata": {"name": "lookup"}},
        ],
    )
    read = ChatkeepChatMessageHistory(session, client=server).messages
    assert [type(m) for m in read] == [
        SystemMessage,
        HumanMessage,
        AIMessage,
        ToolMessage,
        ChatMessage,
        FunctionMessage,
    ]
    tool, critic, function = read[3], read[4], read[5]
    assert isinstance(tool, ToolMessage)
    assert tool.tool_call_id == "c9"
    assert isinstance(critic, ChatMessage)
    assert critic.role == "critic"
    assert isinstance(function, FunctionMessage)
    assert function.name == "lookup"
    assert read[1].id == str(server.messages.list(session).items[1].id)


async def test_which_client_serves_which_methods() -> None:
    fake = FakeChatkeep()
    session = ext(unique("lc-clients-"))
    # A Chatkeep only: the async methods run the synchronous ones in an executor.
    sync_only = ChatkeepChatMessageHistory(session, client=fake)
    await sync_only.aadd_messages([HumanMessage("one")])
    assert [m.content for m in await sync_only.aget_messages()] == ["one"]
    # An AsyncChatkeep only: the synchronous methods say what to do instead.
    async_only = ChatkeepChatMessageHistory(session, client=AsyncFakeChatkeep(server=fake.server))
    with pytest.raises(TypeError, match="async methods"):
        async_only.add_messages([HumanMessage("two")])
    await async_only.aadd_messages([HumanMessage("two")])
    await async_only.aadd_messages([])  # nothing to store: no request (the service wants one)
    assert [m.content for m in sync_only.messages] == ["one", "two"]
    await async_only.aclear()
    assert await async_only.aget_messages() == []
