"""POST /v1/auth/token: a user token for an account's username and password (README
"Accounts"). Registered only when CHATKEEP_ACCOUNTS is on, and outside the authenticated /v1
router: it is where a caller without credentials gets some."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import JSONBody

from service.api.authentication import client_address, worker_limits
from service.api.openapi import PROBLEM_RESPONSES
from service.api.params import ConnectionDependency
from service.auth import tokens
from service.core.errors import Unauthorized
from service.core.schemas import AccessToken, TokenRequest
from service.core.settings import Settings
from service.history import accounts

TOKEN_RESPONSES = {status: PROBLEM_RESPONSES[status] for status in (400, 401, 413, 422, 429, 503)}


class AccountTokenController(Controller):
    path = "/v1/auth"
    tags = ("accounts",)

    @post(
        "/token",
        status_code=200,
        responses=TOKEN_RESPONSES,
        # A token is a credential: no cache keeps it (RFC 6749 section 5.1).
        cache_control=CacheControlHeader(no_store=True),
    )
    async def token(
        self,
        data: JSONBody[TokenRequest],
        conn: ConnectionDependency,
        request: Request[Any, Any, State],
    ) -> AccessToken:
        """Exchange an account's username and password for a user token (no credentials
        needed). A wrong password, an unknown username and a disabled account get the same
        401; failed logins are rate limited per username and per client address (429 with
        Retry-After)."""
        settings: Settings = request.app.state.settings
        limits = worker_limits(request.app.state)
        address = client_address(request)
        limits.check_address(address, field="password")
        limits.check_login(data.username)
        try:
            user_id = await accounts.log_in(conn, username=data.username, password=data.password)
        except Unauthorized:
            limits.failed_login(data.username, address)
            raise
        return AccessToken(
            access_token=tokens.issue(user_id, settings),
            expires_in=settings.account_token_seconds,
            user_id=user_id,
        )
