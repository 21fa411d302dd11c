"""The two things the contract tests run against, behind one face: the in-memory fake and a
real server (tests/conftest.py's ``live_server``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from chatkeep_client import AsyncChatkeep, Chatkeep
from chatkeep_client.testing import AsyncFakeChatkeep, FakeChatkeep
from service.history import accounts
from tests.helpers import user_token

BACKENDS = ["fake", "server"]


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    api_key: str
    database_url: str

    def add_account(self, username: str, password: str) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(self.database_url)
            try:
                await accounts.create(conn, username=username, password=password)
            finally:
                await conn.close()

        asyncio.run(create())


@dataclass
class Backend:
    name: str
    # A client with an API key of every permission; with_credentials for other callers.
    client: Chatkeep
    async_client: Callable[[], AsyncChatkeep]
    add_account: Callable[[str, str], None]
    _opened: list[Chatkeep] = field(default_factory=list)

    def as_user(self, user_id: str) -> Chatkeep:
        return self.client.with_credentials(token=user_token(user_id))

    def as_visitor(self, session_id: str) -> Chatkeep:
        return self.client.with_credentials(session_id=session_id)

    def anonymous(self) -> Chatkeep:
        return self.client.with_credentials()


def fake_backend() -> Backend:
    fake = FakeChatkeep()
    return Backend(
        "fake",
        fake,
        lambda: AsyncFakeChatkeep(server=fake.server),
        fake.server.add_account,
    )


def server_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    live = request.getfixturevalue("live_server")
    with Chatkeep(live.base_url, api_key=live.api_key) as client:
        yield Backend(
            "server",
            client,
            lambda: AsyncChatkeep(live.base_url, api_key=live.api_key),
            live.add_account,
        )


def unique(prefix: str = "") -> str:
    """A name no other test uses (the real server is shared by the whole session)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def session_id() -> str:
    return f"visitor-{uuid.uuid4().hex}"


def contents(items: list[Any]) -> list[str]:
    return [item.content for item in items]
