"""API key format: ``ck_<id>_<secret>``.

The id is public and finds the key's row; the secret is 256 random bits of which only a SHA-256
is stored. A fast hash is enough for secrets that cannot be guessed, and keeps verification cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

PREFIX = "ck_"
KEY_PATTERN = re.compile(r"ck_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")


class NewKey(NamedTuple):
    key_id: str
    token: str
    secret_hash: bytes


class PresentedKey(NamedTuple):
    key_id: str
    secret: str


def generate() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"{PREFIX}{key_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(token: str) -> PresentedKey | None:
    """The parts of a well-formed key; None for anything else."""
    match = KEY_PATTERN.fullmatch(token)
    return PresentedKey(match["id"], match["secret"]) if match else None


def secret_matches(presented: PresentedKey, stored_hash: bytes) -> bool:
    # Constant time: how long the comparison takes says nothing about how much of it matched.
    return hmac.compare_digest(hash_secret(presented.secret), stored_hash)
