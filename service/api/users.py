"""Users as a whole: claim a visitor's conversations, erase everything of a user."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from service.api.params import AuthenticatedRequest
from service.api.problems import PROBLEM_RESPONSES
from service.auth import visitors
from service.auth.principal import Permission, Principal
from service.db import PooledConnection
from service.errors import Forbidden, InvalidInput
from service.models import Claim, Claimed, Erased
from service.store import conversations
from service.validation import reject_nul

UserIdPath = Annotated[
    str, PathParameter(description="The application's user id.", min_length=1, max_length=255)
]


def _require_manage(principal: Principal, user_id: str, permission: Permission) -> None:
    if not principal.may_manage_user(user_id, permission):
        raise Forbidden(
            f"only that user's own token or an API key with the {permission} permission may do"
            " this",
            field="user_id",
        )


class UserController(Controller):
    path = "/users/{user_id:str}"
    tags = ("users",)

    @post("/claim", status_code=200, responses=PROBLEM_RESPONSES)
    async def claim(
        self,
        user_id: UserIdPath,
        data: JSONBody[Claim],
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> Claimed:
        """Move an anonymous visitor's conversations to this user (after the visitor logs in).
        Allowed for an API key with `write`, or the user's own token. Idempotent: claiming again
        moves nothing."""
        reject_nul(user_id, "user_id")
        _require_manage(request.user, user_id, Permission.WRITE)
        if not visitors.is_valid(data.session_id):
            raise InvalidInput(f"session_id must be {visitors.RULE}", field="session_id")
        moved = await conversations.claim(
            conn, user_id=user_id, owner=visitors.owner_hash(data.session_id)
        )
        return Claimed(claimed=moved)

    @delete("/", status_code=200, opt={"permission": Permission.ERASE}, responses=PROBLEM_RESPONSES)
    async def erase(
        self,
        user_id: UserIdPath,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> Erased:
        """Erase every conversation of this user with all its messages; reports the counts.
        Allowed for an API key with `erase`, or the user's own token."""
        reject_nul(user_id, "user_id")
        _require_manage(request.user, user_id, Permission.ERASE)
        return await conversations.erase_user(conn, user_id=user_id)
