"""When to send a request again, and after how long.

A request that never reached the service (the connection could not be made) and one the
service turned away without doing anything (429, 503) can always be sent again. A request that
may have been carried out before its answer was lost (the connection dropped mid-way, a read
timed out) is sent again only when doing it twice is the same as doing it once: reads, PUTs,
DELETEs, and the POSTs this client makes safe by giving them ids (appends, uploads, creates).
"""

from __future__ import annotations

import random

import httpx
import msgspec

from chatkeep_client.errors import retry_after

# Answers that say "nothing was done, come back later".
RETRY_STATUSES = frozenset({429, 503})
# Failures before the request left: whatever it is, it was not carried out.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Retry(msgspec.Struct, frozen=True, kw_only=True):
    """How a client retries. ``retries`` is how many times a request may be sent again; the
    n-th retry waits a random time up to ``backoff * 2**n`` seconds (at most ``max_backoff``;
    "full jitter", so clients that failed together do not come back together), or what the
    service's Retry-After says when that is longer. A Retry-After over ``max_retry_after``
    is not waited for: the error is raised at once, with its ``retry_after``."""

    retries: int = 2
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 30.0

    def _backoff(self, attempt: int) -> float:
        # Jitter only: not a secret, and not worth a cryptographic generator.
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))  # noqa: S311

    def after_failure(
        self, attempt: int, error: httpx.TransportError, idempotent: bool
    ) -> float | None:
        """Seconds to wait before sending again after ``error`` on the ``attempt``-th try (0
        first), or None to give up."""
        if attempt >= self.retries:
            return None
        if not (idempotent or isinstance(error, NOT_SENT)):
            return None
        return self._backoff(attempt)

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again after an error answer, or None to give up."""
        if attempt >= self.retries or response.status_code not in RETRY_STATUSES:
            return None
        asked = retry_after(response)
        if asked is not None and asked > self.max_retry_after:
            return None
        return max(self._backoff(attempt), asked or 0.0)


def policy(retries: int | Retry) -> Retry:
    return retries if isinstance(retries, Retry) else Retry(retries=retries)
