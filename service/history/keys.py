"""API keys of trusted back ends: issue (the key is shown once), list, revoke."""

from __future__ import annotations

from collections.abc import Iterable

from service.core import apikeys
from service.core.errors import InvalidInput, NotFound
from service.core.principal import Permission
from service.db.pool import Connection
from service.store import api_keys
from service.store.api_keys import KeyListing


async def issue(conn: Connection, *, name: str, permissions: Iterable[Permission]) -> str:
    """A new key with these permissions; returns the full key, which is never shown or stored
    again (only a hash of its secret is)."""
    name = name.strip()
    if not name or "\x00" in name:
        raise InvalidInput("must be a non-empty name without NUL characters", field="name")
    key = apikeys.generate()
    await api_keys.insert(
        conn,
        key_id=key.key_id,
        name=name,
        secret_hash=key.secret_hash,
        permissions=permissions,
    )
    return key.token


async def list_keys(conn: Connection) -> list[KeyListing]:
    """Every key, oldest first, never with its secret."""
    return await api_keys.list_all(conn)


async def revoke(conn: Connection, *, key_id: str) -> None:
    """Revoke an active key for good; every worker refuses it at once (a trigger notifies)."""
    if not await api_keys.revoke(conn, key_id=key_id):
        raise NotFound(f"no active key {key_id}", field="key_id")
