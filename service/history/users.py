"""Users as a whole: claim a visitor's conversations, erase everything of a user."""

from __future__ import annotations

from service.core import visitors
from service.core.errors import Conflict, Forbidden, InvalidInput
from service.core.principal import Permission, Principal
from service.core.schemas import Erased
from service.core.validation import reject_nul
from service.db.pool import Connection
from service.store import conversations


def _require_manage(principal: Principal, user_id: str, permission: Permission) -> None:
    reject_nul(user_id, "user_id")
    if not principal.may_manage_user(user_id, permission):
        raise Forbidden(
            f"only that user's own token or an API key with the {permission} permission may do"
            " this",
            field="user_id",
        )


async def claim(conn: Connection, principal: Principal, user_id: str, session_id: str) -> int:
    """Move the visitor's conversations to the user (after the visitor logs in), in one
    statement; how many moved. Claiming again moves nothing. When the user already has an
    external id one of them uses, nothing moves: a Conflict lists them."""
    _require_manage(principal, user_id, Permission.WRITE)
    if not visitors.is_valid(session_id):
        raise InvalidInput(f"session_id must be {visitors.RULE}", field="session_id")
    moved, clashing = await conversations.claim(
        conn, user_id=user_id, visitor_hash=visitors.visitor_hash(session_id)
    )
    if clashing:
        raise Conflict(
            f"user {user_id!r} already has conversations with the external ids "
            f"{', '.join(map(repr, clashing))}; rename or delete one side, then claim again",
            field="session_id",
        )
    return moved


def check_export(principal: Principal, user_id: str) -> None:
    """Reading a user's whole history out (an export): a key with ``read``, or the user."""
    _require_manage(principal, user_id, Permission.READ)


async def erase(conn: Connection, principal: Principal, user_id: str) -> Erased:
    """Every conversation of the user with all it holds, in one statement; the counts."""
    _require_manage(principal, user_id, Permission.ERASE)
    return await conversations.erase_user(conn, user_id=user_id)
