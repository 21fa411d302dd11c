"""User tokens: JWTs signed HS256 with the shared secret CHATKEEP_JWT_SECRET.

``sub`` names the user and ``exp`` is required; ``nbf``, ``iat`` and ``aud`` are checked when
present (``aud`` against CHATKEEP_JWT_AUDIENCE). Only HS256 is accepted, so ``alg: none`` and
algorithm-confusion tokens fail like any forgery.
"""

from __future__ import annotations

import time

import jwt

from service.core.errors import Unauthorized
from service.core.settings import Settings

ALGORITHMS = ["HS256"]
MAX_USER_ID_LENGTH = 255


def user_of(token: str, settings: Settings) -> str:
    """The user id a valid token names; Unauthorized for anything else."""
    if not settings.jwt_secret:
        raise Unauthorized("user tokens are not accepted here (CHATKEEP_JWT_SECRET is not set)")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience or None,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the token is not valid: {exc}") from exc
    user_id = claims["sub"]
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH or "\x00" in user_id:
        raise Unauthorized(f"the token's sub must be a user id of 1 to {MAX_USER_ID_LENGTH} chars")
    return str(user_id)


def issue(user_id: str, settings: Settings, *, now: float | None = None) -> str:
    """A user token for ``user_id`` valid CHATKEEP_ACCOUNT_TOKEN_SECONDS, as user_of accepts
    it (chatkeep's own accounts; applications with a login service sign their own)."""
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": user_id,
        "iat": issued_at,
        "exp": issued_at + settings.account_token_seconds,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHMS[0])
