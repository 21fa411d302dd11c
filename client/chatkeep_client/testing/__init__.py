"""An in-memory chatkeep for an application's unit tests: no server, no database.

    from chatkeep_client.testing import FakeChatkeep

    chatkeep = FakeChatkeep()            # a Chatkeep, acting with an API key
    my_store = MyStore(chatkeep)         # the code under test takes the client
    ...
    alice = chatkeep.with_credentials(token=fake_token("alice"))   # as the user alice

``FakeChatkeep`` is a ``Chatkeep`` and ``AsyncFakeChatkeep`` an ``AsyncChatkeep`` whose
requests are answered by a ``FakeServer`` in memory: the same methods, results and errors
(404 for unknown or others' conversations, 409 on taken ids, 412 on a stale ``if_match``, 422
naming the field, ...). client/tests/test_contract.py runs one suite against the fake and a
real server, so the two agree. Pass ``server=`` to share one store between clients (a sync and
an async one, say). The fake keeps the service's default limits; it does not count quotas or
rate limits, its API key holds every permission, and it takes any token with a ``sub`` and an
``exp`` to come as that user's (it has no secret to check signatures with).
"""

from __future__ import annotations

import httpx

from chatkeep_client.aio import AsyncChatkeep
from chatkeep_client.client import Chatkeep
from chatkeep_client.retry import Retry
from chatkeep_client.testing._server import FakeServer, fake_token

BASE_URL = "http://chatkeep.fake"
# What the fake takes for an API key: any bearer credential starting with "ck_" is one.
API_KEY = "ck_fake_key"

__all__ = ["API_KEY", "AsyncFakeChatkeep", "FakeChatkeep", "FakeServer", "fake_token"]


class FakeChatkeep(Chatkeep):
    """A Chatkeep answered in memory; by default with an API key (a trusted back end)."""

    def __init__(
        self,
        *,
        server: FakeServer | None = None,
        api_key: str | None = API_KEY,
        token: str | None = None,
        session_id: str | None = None,
    ) -> None:
        self.server = server or FakeServer()
        super().__init__(
            BASE_URL,
            api_key=None if token is not None else api_key,
            token=token,
            session_id=session_id,
            # Nothing to wait for: the fake never fails to answer.
            retries=Retry(retries=0),
            transport=httpx.MockTransport(self.server.handle),
        )


class AsyncFakeChatkeep(AsyncChatkeep):
    """An AsyncChatkeep answered in memory; by default with an API key."""

    def __init__(
        self,
        *,
        server: FakeServer | None = None,
        api_key: str | None = API_KEY,
        token: str | None = None,
        session_id: str | None = None,
    ) -> None:
        self.server = server or FakeServer()
        super().__init__(
            BASE_URL,
            api_key=None if token is not None else api_key,
            token=token,
            session_id=session_id,
            retries=Retry(retries=0),
            transport=httpx.MockTransport(self.server.handle),
        )
