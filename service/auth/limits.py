"""Rate limits: requests per minute of each user, visitor and (when set) API key, failed
authentications per minute of each client address, and failed logins per minute of each
account's username (POST /v1/auth/token).

Counted by the ``limits`` library (a sliding-window counter: two counters per caller, expired
by the library) in memory, by each worker process on its own: with N workers (CHATKEEP_WORKERS)
a caller may make up to N times the configured rate, and each instance of the service counts
again. They bound what one worker serves to one caller; a deployment that needs one global
bound sets it at its proxy or gateway (``limits`` also speaks Redis, should chatkeep ever run
one). Not Litestar's RateLimitMiddleware: it keeps a JSON list of every request's time per
caller, re-encoded on each request, never forgets a caller and sends no Retry-After (about
60 µs a request at 600 a minute, against about 8 µs here). The check runs inside the
authentication middleware, where the caller is known.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from service.core.errors import RateLimited
from service.core.principal import Principal
from service.core.settings import Settings, env_name


class RateLimit:
    """At most ``per_minute`` events per key in a sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def _until_allowed(self, key: str) -> float:
        reset_at = self._limiter.get_window_stats(self._item, key).reset_time
        return max(reset_at - time.time(), 0.001)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may have one more event; 0: now."""
        return 0.0 if self._limiter.test(self._item, key) else self._until_allowed(key)

    def hit(self, key: str) -> float:
        """Count one event of ``key`` when allowed (0); the seconds to wait when not (nothing is
        counted then)."""
        return 0.0 if self._limiter.hit(self._item, key) else self._until_allowed(key)


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
        self._logins = limit("failed_logins_per_minute")

    def check_address(self, address: str, field: str = "Authorization") -> None:
        """RateLimited while ``address`` is over its failed authentications: refused before its
        credentials are looked at, so a flood of bogus keys costs no database lookup."""
        if self._failures and (wait := self._failures.wait(address)) > 0:
            raise RateLimited(
                f"too many failed authentications from this address; "
                f"{env_name('failed_auth_per_minute')} is {self.settings.failed_auth_per_minute}",
                retry_after=_retry_after(wait),
                field=field,
            )

    def check_login(self, username: str) -> None:
        """RateLimited while ``username`` is over its failed logins, whatever password comes
        now: otherwise the limit would not bound guessing it."""
        if self._logins and (wait := self._logins.wait(username)) > 0:
            raise RateLimited(
                f"too many failed logins of this username; "
                f"{env_name('failed_logins_per_minute')} is "
                f"{self.settings.failed_logins_per_minute}",
                retry_after=_retry_after(wait),
                field="username",
            )

    def failed_login(self, username: str, address: str) -> None:
        """Count a failed login against the username and, as a failed authentication, the
        address it came from."""
        if self._logins:
            self._logins.hit(username)
        self.failed(address)

    def failed(self, address: str) -> None:
        if self._failures:
            self._failures.hit(address)

    def count(self, principal: Principal) -> None:
        """Count a request of ``principal``; RateLimited when it is over its limit."""
        if principal.trusted:
            limit, setting = self._keys, "key_requests_per_minute"
            key = f"key:{principal.key_id}"
        elif principal.user_id is not None:
            limit, setting, key = self._owners, "requests_per_minute", f"user:{principal.user_id}"
        else:
            limit, setting = self._owners, "requests_per_minute"
            key = f"visitor:{(principal.visitor_hash or b'').hex()}"
        if limit and (wait := limit.hit(key)) > 0:
            raise RateLimited(
                f"too many requests from this {principal.kind}; {env_name(setting)} is "
                f"{getattr(self.settings, setting)} per worker process",
                retry_after=_retry_after(wait),
            )
