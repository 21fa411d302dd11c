"""Rate limits: requests per minute of each user, visitor and (when set) API key, and failed
authentications per minute of each client address.

Counted in memory, by each worker process on its own: with N workers (CHATKEEP_WORKERS) a
caller may make up to N times the configured rate, and each instance of the service counts
again. They bound what one worker serves to one caller; a deployment that needs one global
bound sets it at its proxy or gateway. Not Litestar's RateLimitMiddleware: it keeps a JSON list
of every request's time per caller, re-encoded on each request, takes locks that yield to the
event loop, never forgets a caller, and sends no Retry-After (about 60 µs a request at 600 a
minute). This costs a dictionary lookup and a few float operations (about 1 µs), and runs inside
the authentication middleware, where the caller is known.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable

from service.core.errors import RateLimited
from service.core.principal import Principal
from service.core.settings import Settings, env_name

PERIOD_SECONDS = 60.0
# Callers remembered per limit; beyond that, the ones whose allowance is whole again go first.
MAX_KEYS = 100_000


class RateLimit:
    """At most ``per_minute`` events per key in any minute, bursts included (the generic cell
    rate algorithm: one number per key, the time until which its allowance is spent)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = PERIOD_SECONDS / per_minute
        self._clock = clock
        self._spent_until: dict[Hashable, float] = {}

    def _wait(self, key: Hashable, now: float) -> tuple[float, float]:
        """(when the key's allowance would be spent until after one more event, the seconds to
        wait before that event is allowed)."""
        spent_until = max(self._spent_until.get(key, now), now) + self._interval
        return spent_until, spent_until - now - PERIOD_SECONDS

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key`` may have one more event; 0 or less: now."""
        return self._wait(key, self._clock())[1]

    def hit(self, key: Hashable) -> float:
        """Count one event of ``key`` when allowed; the seconds to wait when not (nothing is
        counted then), else 0 or less."""
        now = self._clock()
        spent_until, wait = self._wait(key, now)
        if wait > 0:
            return wait
        if len(self._spent_until) >= MAX_KEYS and key not in self._spent_until:
            self._forget_idle(now)
        self._spent_until[key] = spent_until
        return wait

    def _forget_idle(self, now: float) -> None:
        self._spent_until = {key: at for key, at in self._spent_until.items() if at > now}
        if len(self._spent_until) > MAX_KEYS // 2:
            # A flood of distinct callers: starting over is cheaper than scanning on every one.
            self._spent_until.clear()


def _retry_after(wait: float) -> int:
    return max(1, math.ceil(wait))


class Limits:
    """The configured limits of one worker; a setting of 0 switches its limit off."""

    def __init__(self, settings: Settings) -> None:
        def limit(name: str) -> RateLimit | None:
            per_minute: int = getattr(settings, name)
            return RateLimit(per_minute) if per_minute else None

        self.settings = settings
        self._owners = limit("requests_per_minute")
        self._keys = limit("key_requests_per_minute")
        self._failures = limit("failed_auth_per_minute")

    def check_address(self, address: str) -> None:
        """RateLimited while ``address`` is over its failed authentications: refused before its
        credentials are looked at, so a flood of bogus keys costs no database lookup."""
        if self._failures and (wait := self._failures.wait(address)) > 0:
            raise RateLimited(
                f"too many failed authentications from this address; "
                f"{env_name('failed_auth_per_minute')} is {self.settings.failed_auth_per_minute}",
                retry_after=_retry_after(wait),
                field="Authorization",
            )

    def failed(self, address: str) -> None:
        if self._failures:
            self._failures.hit(address)

    def count(self, principal: Principal) -> None:
        """Count a request of ``principal``; RateLimited when it is over its limit."""
        key: Hashable
        if principal.trusted:
            limit, setting, key = self._keys, "key_requests_per_minute", principal.key_id
        else:
            limit, setting = self._owners, "requests_per_minute"
            key = principal.user_id or principal.visitor_hash
        if limit and (wait := limit.hit(key)) > 0:
            raise RateLimited(
                f"too many requests from this {principal.kind}; {env_name(setting)} is "
                f"{getattr(self.settings, setting)} per worker process",
                retry_after=_retry_after(wait),
            )
