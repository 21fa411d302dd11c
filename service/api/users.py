"""Users as a whole: claim a visitor's conversations, erase everything of a user."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, post
from litestar.params import JSONBody, PathParameter

from service.api.openapi import PROBLEM_RESPONSES
from service.api.params import AuthenticatedRequest, ConnectionDependency
from service.core.principal import Permission
from service.core.schemas import Claim, Claimed, Erased
from service.history import users

UserIdPath = Annotated[
    str, PathParameter(description="The application's user id.", min_length=1, max_length=255)
]


class UserController(Controller):
    path = "/users/{user_id:str}"
    tags = ("users",)

    @post("/claim", status_code=200, responses=PROBLEM_RESPONSES)
    async def claim(
        self,
        user_id: UserIdPath,
        data: JSONBody[Claim],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> Claimed:
        """Move an anonymous visitor's conversations to this user (after the visitor logs in).
        Allowed for an API key with `write`, or the user's own token. Idempotent: claiming again
        moves nothing."""
        return Claimed(claimed=await users.claim(conn, request.user, user_id, data.session_id))

    @delete("/", status_code=200, opt={"permission": Permission.ERASE}, responses=PROBLEM_RESPONSES)
    async def erase(
        self,
        user_id: UserIdPath,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> Erased:
        """Erase every conversation of this user with all its messages; reports the counts.
        Allowed for an API key with `erase`, or the user's own token."""
        return await users.erase(conn, request.user, user_id)
