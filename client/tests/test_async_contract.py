"""AsyncChatkeep has the surface of Chatkeep, awaited, on the fake and on a real server alike:
the same calls, results and errors; listings walked with ``async for``."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from backends import Backend, contents, unique
from chatkeep_client import Conflict, InvalidInput, NotFound, PreconditionFailed, ext
from tests.helpers import user_token


async def test_a_chat_turn_and_its_history(backend: Backend) -> None:
    async with backend.async_client() as ck:
        conversation = ext(unique("chat-"))
        first = await ck.messages.append(conversation, [{"role": "user", "content": "hi"}])
        second = await ck.messages.append(
            conversation,
            [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}],
            conversation_metadata={"turns": 2},
        )
        assert second.version > first.version
        assert contents((await ck.messages.list(conversation, limit=2)).items) == ["hello", "bye"]
        walked = [m.content async for m in ck.messages.iter(conversation, page_size=1)]
        assert walked == ["hi", "hello", "bye"]
        read = await ck.conversations.get(conversation)
        assert (read.metadata, read.message_count) == ({"turns": 2}, 3)
        with pytest.raises(PreconditionFailed):
            await ck.conversations.patch_metadata(conversation, {"x": 1}, if_match=first.version)
        with pytest.raises(InvalidInput) as raised:
            await ck.messages.append(conversation, [{"role": "", "content": "x"}])
        assert raised.value.field == "messages[0].role"
        assert await ck.messages.clear(conversation) == 3
        await ck.conversations.delete(conversation)
        with pytest.raises(NotFound):
            await ck.conversations.get(conversation)


async def test_listings_walk_every_page(backend: Backend) -> None:
    owner = unique("u")
    async with backend.async_client() as ck:
        made = [(await ck.conversations.create(user_id=owner)).id for _ in range(3)]
        walked = [c.id async for c in ck.conversations.iter(user_id=owner, page_size=2)]
        assert walked == list(reversed(made))
        assert await ck.conversations.count(user_id=owner) == 3
        name = unique("p")
        for text in ("a", "b", "c"):
            await ck.prompts.put(name, text)
        versions = [v.version async for v in ck.prompts.iter_versions(name, page_size=2)]
        assert versions == [3, 2, 1]


async def test_files_stream_both_ways(backend: Backend, tmp_path: Path) -> None:
    async with backend.async_client() as ck:
        conversation_id = (await ck.conversations.create()).id
        data = b"0123456789" * 10_000
        stored = await ck.files.upload(
            conversation_id, io.BytesIO(data), filename="n.txt", metadata={"n": 1}
        )
        assert (stored.size, stored.metadata) == (len(data), {"n": 1})
        chunks = [c async for c in ck.files.iter_content(conversation_id, stored.id)]
        assert b"".join(chunks) == data
        target = tmp_path / "n.txt"
        assert await ck.files.download(conversation_id, stored.id, target) == len(data)
        assert target.read_bytes() == data
        assert [f.id async for f in ck.files.iter(conversation_id)] == [stored.id]
        with pytest.raises(Conflict):
            await ck.files.upload(conversation_id, b"other", filename="x", file_id=stored.id)


async def test_other_credentials_share_the_client(backend: Backend) -> None:
    async with backend.async_client() as ck:
        user_id = unique("frank-")
        as_user = ck.with_credentials(token=user_token(user_id))
        mine = await as_user.conversations.create()
        assert mine.user_id == user_id
        with pytest.raises(NotFound):
            await ck.with_credentials(token=user_token(unique())).conversations.get(mine.id)
        # Closing the derived client leaves the shared connections open.
        await as_user.aclose()
        assert (await ck.conversations.get(mine.id)).id == mine.id
        assert (await ck.conversations.get(uuid.UUID(str(mine.id)))).user_id == user_id
