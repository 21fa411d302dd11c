"""Consistency tokens: a position in the primary's write-ahead log, as PostgreSQL spells one.

A write's response carries the position its commit reached; a read that sends it back is served
only by a server that has replayed the log that far (service/history/replicas.py). The text is
PostgreSQL's pg_lsn form, two hexadecimal numbers (``16/B374D848``: the high and low 32 bits),
so an operator can compare it with ``pg_last_wal_replay_lsn()`` by hand.
"""

from __future__ import annotations

import re

from service.core.errors import InvalidInput

_POSITION = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
RULE = "a write-ahead log position as this service sent it, such as 16/B374D848"


def format_position(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def parse_position(text: str, *, field: str) -> int:
    """The position ``text`` names; InvalidInput naming ``field`` when it names none."""
    match = _POSITION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{field} must be {RULE}", field=field)
    return int(match[1], 16) << 32 | int(match[2], 16)
