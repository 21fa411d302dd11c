"""Read-your-writes on a deployment with read replicas (the service's README, "Read replicas").

Every successful write's response carries a consistency token (``Chatkeep-Consistency``: where
the primary's write-ahead log was once the write committed). A read that sends it back is served
by a replica that has caught up with it, else by the primary. A client remembers the newest
token it received and sends it on every read, so it always sees its own writes (and those it
saw through it); clients made from it by ``with_credentials`` share its token. A service without
replicas sends no token, and then none is sent; the fake sends none either.
"""

from __future__ import annotations

import re
import threading

import httpx

HEADER = "Chatkeep-Consistency"
READS = frozenset({"GET", "HEAD"})
# PostgreSQL's pg_lsn text: the position's high and low 32 bits in hexadecimal.
_POSITION = re.compile(r"\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*")


def position(token: str) -> int | None:
    """Where ``token`` is in the log, so that two compare; None when it names no position."""
    match = _POSITION.fullmatch(token)
    return None if match is None else int(match[1], 16) << 32 | int(match[2], 16)


class Consistency:
    """The newest token one client (and those sharing it) received. Requests may finish in any
    order, on several threads or tasks: the furthest position wins, not the last answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._position = -1

    @property
    def token(self) -> str | None:
        return self._token

    def remember(self, token: str) -> None:
        """Keep ``token`` if it is further than the one kept (a malformed one is ignored)."""
        found = position(token)
        if found is None:
            return
        with self._lock:
            if found > self._position:
                self._token, self._position = token.strip(), found

    def saw(self, response: httpx.Response) -> None:
        token = response.headers.get(HEADER)
        if token is not None:
            self.remember(token)

    def headers(self, method: str) -> dict[str, str]:
        """What a request sends: the token, on a read, once there is one."""
        token = self._token
        if token is None or method not in READS:
            return {}
        return {HEADER: token}
