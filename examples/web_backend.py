"""A web back end (Litestar) serving a browser's chat history, kept in chatkeep.

The browser sends ``X-Session-ID`` (its anonymous visitor id) until the user logs in; logging
in claims the visitor's conversations for the user, and from then on the back end acts with the
user's token (a cookie). A chat is a conversation named by the browser's ``session_id``, and
its chapters are topics.

    GET    /chat/history?session_id=&chapter=    the chapter's messages, oldest first
    DELETE /chat/history?session_id=&chapter=    forget them
    POST   /login {username, password}           chatkeep's accounts; claims the visitor's chats
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import CookieParameter, FromQuery, HeaderParameter, JSONBody
from msgspec import Struct

from chatkeep_client import AsyncChatkeep, ChatkeepError, NotFound, ext

TOKEN_COOKIE = "chat_token"  # noqa: S105 - the cookie's name
Visitor = Annotated[str | None, HeaderParameter(name="X-Session-ID")]
Token = Annotated[str | None, CookieParameter(name=TOKEN_COOKIE)]
Client = NamedDependency[AsyncChatkeep]  # create_app's client, from the app's state


class Login(Struct):
    username: str
    password: str


def caller(chatkeep: AsyncChatkeep, token: str | None, visitor: str | None) -> AsyncChatkeep:
    """chatkeep as the logged-in user, else as the visitor: it sees only what they may."""
    if token is None and visitor is None:
        raise NotAuthorizedException("send X-Session-ID, or log in")
    return chatkeep.with_credentials(token=token, session_id=None if token else visitor)


@get("/chat/history")
async def history(
    chatkeep: Client,
    session_id: FromQuery[str],
    x_session_id: Visitor,
    token: Token,
    chapter: FromQuery[str | None] = None,
) -> list[dict[str, Any]]:
    messages = caller(chatkeep, token, x_session_id).messages
    try:
        page = await messages.list(ext(session_id), topic=chapter, limit=200)
    except NotFound:  # nothing said yet
        return []
    return [{"role": m.role, "content": m.content, "at": m.created_at} for m in page.items]


@delete("/chat/history")
async def forget(
    chatkeep: Client,
    session_id: FromQuery[str],
    x_session_id: Visitor,
    token: Token,
    chapter: FromQuery[str | None] = None,
) -> None:
    with suppress(NotFound):
        await caller(chatkeep, token, x_session_id).messages.clear(ext(session_id), topic=chapter)


@post("/login", status_code=204)
async def login(chatkeep: Client, data: JSONBody[Login], x_session_id: Visitor) -> Response[None]:
    token = await chatkeep.auth.token(data.username, data.password)
    if x_session_id is not None:
        await chatkeep.users.claim(token.user_id, x_session_id)
    cookie = Cookie(
        key=TOKEN_COOKIE,
        value=token.access_token,
        max_age=token.expires_in,
        httponly=True,
        secure=True,
        samesite="strict",
    )
    return Response(None, cookies=[cookie])


def passed_on(request: Request[Any, Any, Any], error: ChatkeepError) -> Response[Any]:
    """chatkeep's refusals (a wrong password, a bad session id) as the browser's."""
    status = error.status if error.status is not None and error.status < 500 else 502
    return Response({"detail": error.detail, "field": error.field}, status_code=status)


def create_app(connect: Callable[[], AsyncChatkeep]) -> Litestar:
    """``connect()`` makes the back end's client (with its API key: it logs users in and claims
    their history), once, on the app's event loop; it is closed when the app stops."""

    @asynccontextmanager
    async def connected(app: Litestar) -> AsyncIterator[None]:
        async with connect() as app.state.chatkeep:
            yield

    def client(state: State) -> AsyncChatkeep:
        chatkeep: AsyncChatkeep = state.chatkeep
        return chatkeep

    return Litestar(
        [history, forget, login],
        lifespan=[connected],
        dependencies={"chatkeep": Provide(client, sync_to_thread=False)},
        exception_handlers={ChatkeepError: passed_on},
    )
