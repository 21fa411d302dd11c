"""Users as a whole (claim a visitor's conversations, erase), and accounts' tokens."""

from __future__ import annotations

import msgspec

from chatkeep_client._call import Call, decoder, json_call, segment
from chatkeep_client.models import AccessToken, Erased


class _Claim(msgspec.Struct):
    session_id: str


class _Claimed(msgspec.Struct):
    claimed: int


class _Login(msgspec.Struct):
    username: str
    password: str


def _path(user_id: str) -> str:
    return f"/v1/users/{segment(user_id, 'user_id')}"


def claim(user_id: str, session_id: str) -> Call[int]:
    """Move the anonymous visitor's conversations to the user who just logged in; how many
    moved (claiming again moves nothing)."""
    read = decoder(_Claimed)
    return json_call(
        "POST",
        f"{_path(user_id)}/claim",
        _Claim(session_id),
        lambda response: read(response).claimed,
    )


def erase(user_id: str) -> Call[Erased]:
    """Delete every conversation of the user, with all it holds."""
    return Call("DELETE", _path(user_id), decoder(Erased))


def token(username: str, password: str) -> Call[AccessToken]:
    """A user token for an account (CHATKEEP_ACCOUNTS on)."""
    return json_call("POST", "/v1/auth/token", _Login(username, password), decoder(AccessToken))
