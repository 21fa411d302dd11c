"""Credentials to the Principal making a request (README "Identity and access")."""

from __future__ import annotations

from service.auth import tokens
from service.auth.keyring import KeyRing
from service.core import apikeys, visitors
from service.core.errors import Unauthorized
from service.core.principal import LOCAL, OWNER_PERMISSIONS, Principal
from service.core.settings import Settings


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
        kind="visitor",
        permissions=OWNER_PERMISSIONS,
        visitor_hash=visitors.visitor_hash(session_id),
    )


async def identify(
    authorization: str | None, session_id: str | None, settings: Settings, keyring: KeyRing
) -> Principal:
    """The principal the Authorization and X-Session-ID headers name (either may be absent).
    Authorization wins when both are sent."""
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized("expected Authorization: Bearer <API key or user token>")
        if credentials.startswith(apikeys.PREFIX):
            return await _key_principal(credentials, keyring)
        user_id = tokens.user_of(credentials, settings)
        return Principal(kind="user", permissions=OWNER_PERMISSIONS, user_id=user_id)
    if session_id is not None:
        return _visitor_principal(session_id, settings)
    if settings.insecure_no_auth:
        return LOCAL
    accepted = "Authorization: Bearer <API key or user token>"
    if settings.allow_anonymous:
        accepted += f" or {visitors.HEADER}"
    raise Unauthorized(f"credentials required: {accepted}")
