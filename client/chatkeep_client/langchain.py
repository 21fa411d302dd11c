"""LangChain's chat message history kept in chatkeep (``pip install 'chatkeep-client[langchain]'``).

    from chatkeep_client import Chatkeep, ext
    from chatkeep_client.langchain import ChatkeepChatMessageHistory

    chatkeep = Chatkeep("http://localhost:8000", api_key=KEY)
    chain = RunnableWithMessageHistory(
        prompt | model,
        lambda session_id: ChatkeepChatMessageHistory(ext(session_id), client=chatkeep),
        input_messages_key="question",
        history_messages_key="history",
    )

Each LangChain message is one chatkeep message: its role is the one chatkeep uses (human is
``user``, ai ``assistant``, system, tool and function theirs, a ChatMessage its own role, which
must be a chatkeep role name), its content the text; everything else LangChain knows of it
(type, id, name, tool calls, tool_call_id, additional_kwargs, response_metadata, usage, a list
of content blocks) is kept under the message metadata's ``"langchain"`` key, so it reads back
as the message that was added. Messages written by other applications (no ``"langchain"`` key)
read back by their role: user, assistant, system, tool (``tool_call_id`` from the metadata),
function (``name``), any other a ChatMessage. A message added without an id reads back with
chatkeep's id for it (a UUID), so every message read has a stable id.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from chatkeep_client._call import ConversationRef
from chatkeep_client.aio import AsyncChatkeep
from chatkeep_client.client import Chatkeep
from chatkeep_client.errors import NotFound
from chatkeep_client.models import Message

# The message metadata key holding what LangChain knows of a message beyond role and content.
METADATA_KEY = "langchain"
# LangChain's message types (message.type, chunks included) and chatkeep's roles for them.
ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "function",
    "HumanMessageChunk": "user",
    "AIMessageChunk": "assistant",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "FunctionMessageChunk": "function",
}
# How a message without LangChain's metadata (another application's) reads back.
TYPES = {
    "user": "human",
    "assistant": "ai",
    "system": "system",
    "tool": "tool",
    "function": "function",
}


def to_chatkeep(message: BaseMessage, topic: str | None = None) -> dict[str, Any]:
    """The chatkeep message standing for a LangChain message."""
    kept = message_to_dict(message)
    data = dict(kept["data"])
    content = data.pop("content")
    if isinstance(content, str):
        text = content
    else:  # content blocks: the text is the content, the blocks are kept as they are
        text = "".join(_block_text(block) for block in content)
        data["content"] = content
    role = data["role"] if kept["type"] in ("chat", "ChatMessageChunk") else ROLES[kept["type"]]
    stored: dict[str, Any] = {
        "role": role,
        "content": text,
        "metadata": {METADATA_KEY: {"type": kept["type"], **_set(data)}},
    }
    if topic is not None:
        stored["topic"] = topic
    return stored


def to_langchain(message: Message) -> BaseMessage:
    """The LangChain message a chatkeep message stands for."""
    kept = message.metadata.get(METADATA_KEY)
    if isinstance(kept, dict) and "type" in kept:
        data = {key: value for key, value in kept.items() if key != "type"}
        data.setdefault("content", message.content)
        data.setdefault("id", str(message.id))
        kind = kept["type"]
    else:
        data = {"content": message.content, "id": str(message.id)}
        kind = TYPES.get(message.role, "chat")
        if kind == "chat":
            data["role"] = message.role
        elif kind == "tool":
            data["tool_call_id"] = str(message.metadata.get("tool_call_id", ""))
        elif kind == "function":
            data["name"] = str(message.metadata.get("name", ""))
    return messages_from_dict([{"type": kind, "data": data}])[0]


def _block_text(block: str | dict[str, Any]) -> str:
    if isinstance(block, str):
        return block
    text = block.get("text") if block.get("type") == "text" else None
    return text if isinstance(text, str) else ""


def _set(data: dict[str, Any]) -> dict[str, Any]:
    """LangChain's fields that hold something (unset ones come back as their defaults)."""
    return {key: value for key, value in data.items() if value not in (None, {}, [])}


class ChatkeepChatMessageHistory(BaseChatMessageHistory):
    """One conversation's history as LangChain's ``BaseChatMessageHistory``.

    ``conversation_id`` is the conversation's UUID or ``ext("your-session-id")``; the first
    messages added create it, owned by ``user_id`` when given (an API key's client acting for
    that user). With ``topic`` the history is that topic's messages only: added with it, read
    and cleared by it. ``max_messages`` reads only the latest that many (one request) instead
    of the whole history.

    ``client`` is a ``Chatkeep`` or an ``AsyncChatkeep``; pass both as ``client`` and
    ``async_client`` to have each kind of method use its own. With a ``Chatkeep`` only, the
    async methods run the synchronous ones in LangChain's executor; with an ``AsyncChatkeep``
    only, the synchronous methods raise ``TypeError`` (use ``ainvoke``/``astream``).
    """

    def __init__(
        self,
        conversation_id: ConversationRef,
        client: Chatkeep | AsyncChatkeep,
        *,
        async_client: AsyncChatkeep | None = None,
        user_id: str | None = None,
        topic: str | None = None,
        max_messages: int | None = None,
    ) -> None:
        super().__init__()
        self.conversation_id = conversation_id
        self.sync_client = client if isinstance(client, Chatkeep) else None
        self.async_client = client if isinstance(client, AsyncChatkeep) else async_client
        self.user_id = user_id
        self.topic = topic
        self.max_messages = max_messages

    def _sync(self) -> Chatkeep:
        if self.sync_client is None:
            raise TypeError(
                "this history was given an AsyncChatkeep only: use its async methods "
                "(aget_messages, aadd_messages, aclear), or pass a Chatkeep too"
            )
        return self.sync_client

    def _batch(self, messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
        return [to_chatkeep(message, self.topic) for message in messages]

    # --- synchronous ----------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # a plain attribute there
        """The history, oldest first ([] before the conversation exists)."""
        chatkeep = self._sync()
        try:
            if self.max_messages is not None:
                page = chatkeep.messages.list(
                    self.conversation_id, limit=self.max_messages, topic=self.topic
                )
                return [to_langchain(message) for message in page.items]
            found = chatkeep.messages.iter(self.conversation_id, topic=self.topic)
            return [to_langchain(message) for message in found]
        except NotFound:
            return []

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store the messages in one request (one transaction)."""
        if messages:
            self._sync().messages.append(
                self.conversation_id, self._batch(messages), user_id=self.user_id
            )

    def clear(self) -> None:
        """Delete the history (the topic's, with ``topic``); the conversation stays."""
        with suppress(NotFound):  # no conversation yet: nothing to clear
            self._sync().messages.clear(self.conversation_id, topic=self.topic)

    # --- asynchronous ---------------------------------------------------------------------

    async def aget_messages(self) -> list[BaseMessage]:
        chatkeep = self.async_client
        if chatkeep is None:
            return await super().aget_messages()
        try:
            if self.max_messages is not None:
                page = await chatkeep.messages.list(
                    self.conversation_id, limit=self.max_messages, topic=self.topic
                )
                return [to_langchain(message) for message in page.items]
            found = chatkeep.messages.iter(self.conversation_id, topic=self.topic)
            return [to_langchain(message) async for message in found]
        except NotFound:
            return []

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        chatkeep = self.async_client
        if chatkeep is None:
            await super().aadd_messages(messages)
        elif messages:
            await chatkeep.messages.append(
                self.conversation_id, self._batch(messages), user_id=self.user_id
            )

    async def aclear(self) -> None:
        chatkeep = self.async_client
        if chatkeep is None:
            await super().aclear()
            return
        with suppress(NotFound):
            await chatkeep.messages.clear(self.conversation_id, topic=self.topic)
