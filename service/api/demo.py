"""POST /demo/login: the demo chat's stand-in for an application's login service. It signs a user
token for ``demo:<username>`` with CHATKEEP_JWT_SECRET, for anyone, without a password: a demo
only (registered only when CHATKEEP_DEMO is on; README "Demo chat")."""

from __future__ import annotations

from litestar import Controller, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import JSONBody

from service.auth import tokens
from service.core.schemas import AccessToken, DemoLogin
from service.core.settings import Settings

# Demo users' ids are set apart from the ids an application gives its users, so the demo cannot
# hand out a token for one of them.
USER_ID_PREFIX = "demo:"


class DemoLoginController(Controller):
    path = "/demo"
    include_in_schema = False

    @post("/login", status_code=200, cache_control=CacheControlHeader(no_store=True))
    async def login(self, data: JSONBody[DemoLogin], state: State) -> AccessToken:
        settings: Settings = state.settings
        user_id = USER_ID_PREFIX + data.username
        return AccessToken(
            access_token=tokens.issue(user_id, settings),
            expires_in=settings.account_token_seconds,
            user_id=user_id,
        )
