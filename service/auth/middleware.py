"""Authentication (who is calling) and API key permissions (may they do this), for /v1."""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from service.auth import apikeys, tokens, visitors
from service.auth.keyring import KeyRing
from service.auth.principal import ALL_PERMISSIONS, OWNER_PERMISSIONS, Permission, Principal
from service.errors import Forbidden, Unauthorized
from service.settings import Settings

log = logging.getLogger(__name__)

LOCAL = Principal(kind="local", permissions=ALL_PERMISSIONS)
READ_METHODS = frozenset({"GET", "HEAD"})


async def _key_principal(token: str, keyring: KeyRing) -> Principal:
    presented = apikeys.parse(token)
    if presented is None:
        raise Unauthorized("malformed API key")
    record = await keyring.lookup(presented.key_id)
    if record is None or not apikeys.secret_matches(presented, record.secret_hash):
        raise Unauthorized("unknown API key")
    if record.revoked:
        raise Unauthorized("the API key has been revoked")
    return Principal(kind="key", permissions=record.permissions, key_id=record.id)


def _visitor_principal(session_id: str, settings: Settings) -> Principal:
    if not settings.allow_anonymous:
        raise Unauthorized("anonymous access is disabled", field=visitors.HEADER)
    if not visitors.is_valid(session_id):
        raise Unauthorized(f"{visitors.HEADER} must be {visitors.RULE}", field=visitors.HEADER)
    return Principal(
        kind="visitor", permissions=OWNER_PERMISSIONS, owner=visitors.owner_hash(session_id)
    )


async def identify(connection: ASGIConnection[Any, Any, Any, State]) -> Principal:
    """The request's principal. Authorization wins over X-Session-ID when both are sent."""
    state = connection.app.state
    settings: Settings = state.settings
    authorization = connection.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized("expected Authorization: Bearer <API key or user token>")
        if credentials.startswith(apikeys.PREFIX):
            return await _key_principal(credentials, state.keyring)
        user_id = tokens.user_of(credentials, settings)
        return Principal(kind="user", permissions=OWNER_PERMISSIONS, user_id=user_id)
    session_id = connection.headers.get(visitors.HEADER)
    if session_id is not None:
        return _visitor_principal(session_id, settings)
    if settings.insecure_no_auth:
        return LOCAL
    accepted = "Authorization: Bearer <API key or user token>"
    if settings.allow_anonymous:
        accepted += f" or {visitors.HEADER}"
    raise Unauthorized(f"credentials required: {accepted}")


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
    """Who is calling, and may they call this route at all. The permission check lives here
    rather than in a Litestar guard: a synchronous guard runs in a worker thread, which cost
    about a third of the throughput of a history read (bench/NOTES.md)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        principal = await identify(connection)
        method = str(connection.scope.get("method", ""))
        require_permission(principal, method, connection.route_handler)
        return AuthenticationResult(user=principal, auth=None)
