"""Authentication (who is calling) and API key permissions (may they do this), for /v1.

POST /v1/auth/token (service/api/accounts.py) is the one public /v1 path: app.py registers it
outside the router this middleware guards, since it is where credentials are obtained.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from service.auth.identify import identify
from service.auth.limits import Limits
from service.core import visitors
from service.core.errors import Forbidden, Unauthorized
from service.core.principal import Permission, Principal

READ_METHODS = frozenset({"GET", "HEAD"})
# The app state's entry holding this worker's rate limits, made on the first request.
LIMITS = "limits"


def worker_limits(state: State) -> Limits:
    """This worker's rate limits, made on the first request that needs them."""
    limits: Limits | None = state.get(LIMITS)
    if limits is None:
        limits = state[LIMITS] = Limits(state.settings)
    return limits


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The peer's address: behind a proxy, the one uvicorn takes from X-Forwarded-For when the
    proxy is trusted (--forwarded-allow-ips)."""
    return connection.client.host if connection.client else ""


def require_permission(principal: Principal, method: str, route_handler: BaseRouteHandler) -> None:
    """An API key needs ``read`` for reads and ``write`` for the rest, unless the handler's opt
    names another permission. Users and visitors hold no such grants: the SQL scope confines
    them to their own conversations, and user-wide actions check Principal.may_manage_user."""
    if not principal.trusted:
        return
    needed: Permission = route_handler.opt.get("permission") or (
        Permission.READ if method in READ_METHODS else Permission.WRITE
    )
    if needed not in principal.permissions:
        raise Forbidden(f"this API key lacks the {needed} permission", field="Authorization")


class Authenticate(AbstractAuthenticationMiddleware):
    """Who is calling, may they call this route at all, and not too often (service/auth/limits.py).
    The permission check lives here rather than in a Litestar guard: a synchronous guard runs in
    a worker thread, which cost about a third of the throughput of a history read
    (bench/NOTES.md)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        state = connection.app.state
        limits = worker_limits(state)
        address = client_address(connection)
        limits.check_address(address)
        try:
            principal = await identify(
                connection.headers.get("authorization"),
                connection.headers.get(visitors.HEADER),
                state.settings,
                state.keyring,
            )
        except Unauthorized:
            limits.failed(address)
            raise
        limits.count(principal)
        method = str(connection.scope.get("method", ""))
        require_permission(principal, method, connection.route_handler)
        return AuthenticationResult(user=principal, auth=None)
