"""Anonymous visitors: an opaque session id a browser front end generates and keeps.

Only its SHA-256 is stored (as conversations.visitor_hash), so the database never holds a usable id.
"""

from __future__ import annotations

import hashlib
import re

HEADER = "X-Session-ID"
MIN_LENGTH = 16
MAX_LENGTH = 256
# URL-safe characters: UUIDs, base64url and hex ids all fit.
SESSION_ID = re.compile(rf"[A-Za-z0-9._~:-]{{{MIN_LENGTH},{MAX_LENGTH}}}")
RULE = f"{MIN_LENGTH} to {MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ : -"


def is_valid(session_id: str) -> bool:
    return SESSION_ID.fullmatch(session_id) is not None


def visitor_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()
