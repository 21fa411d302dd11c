"""The caller of a request, and the slice of the data it may see (its scope)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgspec

from service.core.errors import Forbidden


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    # Erasing a user's whole history (DELETE /v1/users/{user_id}) with an API key.
    ERASE = "erase"


ALL_PERMISSIONS = frozenset(Permission)
# What users and visitors may do to their own conversations.
OWNER_PERMISSIONS = frozenset({Permission.READ, Permission.WRITE})

Kind = Literal["key", "user", "visitor", "local"]
# The caller's scope: the named parameters of the access predicate every query addressing one
# conversation carries (sql/conversations.sql):
#     (:caller_trusted OR c.user_id = :caller_user_id OR c.visitor_hash = :caller_visitor_hash)
Scope = dict[str, bool | str | bytes | None]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Exactly one of: an API key (trusted), a user (token), a visitor (session id) or, with
    authentication switched off for local development, ``local`` (trusted)."""

    kind: Kind
    permissions: frozenset[Permission]
    # The user a user token names.
    user_id: str | None = None
    # SHA-256 of a visitor's session id.
    visitor_hash: bytes | None = None
    # The API key's id, for logs and errors.
    key_id: str | None = None

    @property
    def trusted(self) -> bool:
        """Trusted callers see every conversation; others only their own."""
        return self.kind in ("key", "local")

    def scope(self) -> Scope:
        """The scope parameters of the SQL queries (see sql/conversations.sql)."""
        return {
            "caller_trusted": self.trusted,
            "caller_user_id": self.user_id,
            "caller_visitor_hash": self.visitor_hash,
        }

    def new_conversation_owner(
        self, requested_user_id: str | None, field: str
    ) -> tuple[str | None, bytes | None]:
        """The (user_id, visitor hash) a conversation this caller creates belongs to. Only a
        trusted caller chooses the user; a user creates its own, a visitor anonymous ones."""
        if self.trusted:
            return requested_user_id, None
        if self.kind == "user":
            if requested_user_id not in (None, self.user_id):
                raise Forbidden(
                    "a user token creates conversations for its own user only", field=field
                )
            return self.user_id, None
        if requested_user_id is not None:
            raise Forbidden("an anonymous visitor cannot create a user's conversation", field=field)
        return None, self.visitor_hash

    def may_manage_user(self, user_id: str, permission: Permission) -> bool:
        """Acting on a user as a whole (claim, erase): a key with ``permission``, or that user."""
        if self.trusted:
            return permission in self.permissions
        return self.kind == "user" and self.user_id == user_id


# The service's own tools (importers, the CLI) and, with authentication switched off for local
# development, callers without credentials.
LOCAL = Principal(kind="local", permissions=ALL_PERMISSIONS)
