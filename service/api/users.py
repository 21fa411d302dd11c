"""Users as a whole: claim a visitor's conversations, erase everything of a user."""

from __future__ import annotations

import functools
import re
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter
from litestar.response import Stream

from service.api import downloads
from service.api.openapi import PROBLEM_RESPONSES
from service.api.params import AuthenticatedRequest, ConnectionDependency
from service.core.principal import Permission
from service.core.schemas import Claim, Claimed, Erased
from service.core.settings import Settings
from service.db.pool import own_session
from service.history import users
from service.transfer import export

NDJSON = "application/x-ndjson"
# A user id may hold anything but NUL; the download's file name keeps only the harmless part.
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

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

    @get("/export", media_type=NDJSON, responses=PROBLEM_RESPONSES)
    async def export(
        self, user_id: UserIdPath, request: AuthenticatedRequest, state: State
    ) -> Stream:
        """Everything of this user (conversations, messages, files with their bytes) as the
        NDJSON of `chatkeep export --user` (docs/EXPORT_FORMAT.md), streamed from one
        consistent snapshot in constant memory. Allowed for an API key with `read`, or the
        user's own token."""
        users.check_export(request.user, user_id)
        settings: Settings = state.settings
        # One snapshot's cursors: a session of its own, even behind a transaction pooler.
        connect = functools.partial(own_session, state.pool, settings, "chatkeep export")
        return Stream(
            export.user_export(connect, user_id),
            media_type=NDJSON,
            headers={
                "Content-Disposition": downloads.content_disposition(
                    f"chatkeep-export-{_FILENAME_UNSAFE.sub('_', user_id)}.ndjson"
                ),
                # Personal data: no cache keeps a copy.
                "Cache-Control": "no-store",
            },
        )
