"""All configuration in one object, read once from the environment.

Every setting is ``CHATKEEP_<NAME>`` except ``DATABASE_URL``, which platforms set by convention.
"""

from __future__ import annotations

import math
import os
from functools import cache
from typing import Literal

import msgspec
from dotenv import dotenv_values

from service.core.msgspec_errors import field_of

ENV_PREFIX = "CHATKEEP_"
# Read from the working directory at start-up when present; the real environment wins.
DOTENV_FILE = ".env"
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
# HS256 keys shorter than the hash output are weak (RFC 7518, section 3.2).
MIN_JWT_SECRET_LENGTH = 32
# A metrics scraper's bearer token: long enough not to be guessed.
MIN_METRICS_TOKEN_LENGTH = 16


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Empty means: start the embedded PostgreSQL (``chatkeep serve``) in ``data_dir``.
    database_url: str = ""
    data_dir: str = ".chatkeep"

    pool_min_size: int = 2
    pool_max_size: int = 10
    # Seconds a pooled connection may sit idle before it is closed (0: never); asyncpg's
    # max_inactive_connection_lifetime. Short for serverless databases (README "Configuration").
    pool_idle_lifetime: float = 300.0
    # Queries a pooled connection runs before it is replaced; asyncpg's max_queries.
    pool_max_queries: int = 50_000
    # Seconds. How long a request waits for a free pool connection before it gets a 503.
    pool_acquire_timeout: float = 5.0
    # Admission (README "Under overload"): requests of one worker in the database path at once
    # (0: unlimited); one past that waits this many milliseconds for a slot, then gets a 503.
    # Off by default: a burst on one conversation (appends queued on its row lock) is not
    # overload, and a gate tight enough to bound tails refuses it (bench/REPORT.md "Overload").
    max_in_flight: int = 0
    admission_wait_ms: int = 100
    connect_timeout: float = 5.0
    # Read replicas (README "Read replicas"): comma-separated URLs, in DATABASE_URL's forms, of
    # streaming replicas of the primary. Reads go to one when it has caught up with the caller.
    replica_urls: str = ""
    # Connections each worker may open to each replica.
    replica_pool_max_size: int = 5
    # Seconds a replica may be behind the primary and still serve reads that carry no token.
    replica_max_lag_seconds: float = 5.0
    # Seconds between two polls of how far the primary and each replica are (per worker).
    replica_poll_seconds: float = 0.05
    # Client-side cap on one round trip; the server-side cap below cuts the statement itself.
    command_timeout: float = 30.0
    statement_timeout_ms: int = 15_000
    # "transaction" when DATABASE_URL is a transaction pooler such as PgBouncer (README "Behind
    # PgBouncer"): the pool then prepares no named statements and sets nothing at connect, and
    # what needs a session of its own (LISTEN, the prune's lock, migrations, long exports)
    # connects to direct_database_url. "session": DATABASE_URL keeps a session per connection.
    pool_mode: Literal["session", "transaction"] = "session"
    direct_database_url: str = ""

    max_content_bytes: int = 1 * MIB
    max_metadata_bytes: int = 64 * KIB
    max_batch: int = 100
    max_page: int = 1000
    default_page: int = 50
    # Content and metadata bytes a history page carries at most (it stops early and says so
    # with next_cursor); one message alone may be larger.
    max_page_bytes: int = 4 * MIB
    # Bytes of encoded history pages each worker keeps for repeated reads (README "Conditional
    # and cached reads"); 0 turns the cache off.
    page_cache_bytes: int = 32 * MIB
    max_body_bytes: int = 16 * MIB
    # Conversations one statement of a bulk delete (DELETE /v1/conversations) removes: each
    # batch is its own short transaction, so no lock is held long and no statement runs long.
    bulk_delete_batch: int = 500
    # Retention (README "Retention"): anonymous visitors' conversations not written to for this
    # many days are deleted by the prune (0: kept), and so are conversations past expires_at.
    # The server prunes every this many seconds, one worker at a time (0: only `chatkeep prune`).
    visitor_retention_days: int = 0
    prune_interval_seconds: float = 3600.0
    # Attachments: one file, and all files of one conversation (uploads are streamed, so these
    # are not bounded by max_body_bytes).
    max_file_bytes: int = 32 * MIB
    max_conversation_file_bytes: int = 256 * MIB
    # Seconds. An upload is read to a temporary file before it touches the database; the client
    # may pause this long between two pieces, and take this long for the whole body.
    upload_idle_seconds: float = 30.0
    upload_deadline_seconds: float = 600.0

    # Identity (see README "Identity and access").
    # HS256 secret for user tokens; user tokens are refused while it is empty.
    jwt_secret: str = ""
    # When set, a user token must carry this aud.
    jwt_audience: str = ""
    # Seconds of clock skew tolerated on exp, nbf and iat.
    jwt_leeway_seconds: float = 5.0
    # Accept anonymous visitors identified by X-Session-ID.
    allow_anonymous: bool = False
    # Comma-separated origins allowed to call from a browser ("*" for any); empty: no CORS.
    cors_origins: str = ""
    # Seconds a worker may reuse an API key's record (revocations still apply at once).
    key_cache_seconds: float = 60.0
    # Local development only: requests without credentials act as a trusted caller.
    insecure_no_auth: bool = False
    # Accounts kept by chatkeep (README "Accounts"): POST /v1/auth/token exchanges a username
    # and password for a user token valid this many seconds.
    accounts: bool = False
    account_token_seconds: int = 3600
    # Failed logins per minute of one username (per worker process); 0 switches it off.
    failed_logins_per_minute: int = 10
    # Browser pages served by chatkeep (README "Operator console", "Demo chat"); off: 404.
    # The demo issues user tokens to anyone who names a user: never on in production.
    console: bool = False
    demo: bool = False

    # Quotas: what one user, or one anonymous visitor, may own (conversations, and bytes of
    # message content, metadata and files), whoever writes it.
    user_max_conversations: int = 10_000
    user_max_bytes: int = 1 * GIB
    visitor_max_conversations: int = 100
    visitor_max_bytes: int = 64 * MIB
    # Rate limits, per worker process (see service/auth/limits.py); 0 switches one off.
    # Requests per minute of one user or one visitor, and of one API key.
    requests_per_minute: int = 600
    key_requests_per_minute: int = 0
    # Failed authentications per minute from one client address.
    failed_auth_per_minute: int = 600
    # Live updates (README "Live updates"): seconds between heartbeats (SSE comments) on an idle
    # stream, and the events a subscriber may fall behind by before its stream is closed.
    events_heartbeat_seconds: float = 15.0
    events_buffer: int = 1000
    # A conversation's events within this many milliseconds of its last hand-over to its
    # subscribers wait for the interval's end and go out together (0: each as it comes).
    events_coalesce_ms: int = 50
    # ... and this many while the machine is short of CPU (service/core/cpu_pressure.py):
    # writers keep the CPU, subscribers get fewer, larger writes.
    events_busy_coalesce_ms: int = 1000
    # A stream ends after this long (the client reconnects and resumes), so credentials are
    # checked again and long-lived connections spread over workers as they come and go.
    events_max_seconds: float = 3600.0

    # Seconds a worker keeps serving after SIGTERM while /health/ready answers 503 "draining",
    # so a load balancer takes the instance out before it stops accepting (README "Running
    # several instances"); then in-flight requests finish and it exits. 0: stop accepting at once.
    drain_seconds: float = 0.0
    # Seconds in-flight requests get once a worker stops accepting; then uvicorn cancels them
    # and granian kills the worker. Bounds every stop: granian loses a SIGTERM that arrives
    # while a worker is still starting, and would otherwise wait for that worker forever.
    stop_timeout_seconds: float = 30.0

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    # Observability (README "Observability"): log lines as text or one JSON object each;
    # chatkeep's access log line per request; GET /metrics, answered only with this bearer
    # token (empty: no /metrics, nothing counted per request); OpenTelemetry tracing when its
    # packages are installed.
    log_format: str = "text"
    access_log: bool = True
    metrics_token: str = ""
    tracing: bool = False

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            # nan compares false with everything and inf never elapses: either would switch a
            # check or a timeout off without saying so.
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingsError(f"{env_name(name)} must be a finite number, got {value}")
        durations = {
            "pool_acquire_timeout": self.pool_acquire_timeout,
            "connect_timeout": self.connect_timeout,
            "replica_max_lag_seconds": self.replica_max_lag_seconds,
            "replica_poll_seconds": self.replica_poll_seconds,
            "command_timeout": self.command_timeout,
            "upload_idle_seconds": self.upload_idle_seconds,
            "upload_deadline_seconds": self.upload_deadline_seconds,
            "events_heartbeat_seconds": self.events_heartbeat_seconds,
            "events_max_seconds": self.events_max_seconds,
            "stop_timeout_seconds": self.stop_timeout_seconds,
        }
        for name, seconds in durations.items():
            if seconds <= 0:
                raise SettingsError(f"{env_name(name)} must be more than 0 seconds, got {seconds}")
        for name in (
            "jwt_leeway_seconds",
            "key_cache_seconds",
            "pool_idle_lifetime",
            "visitor_retention_days",
            "prune_interval_seconds",
            "drain_seconds",
            "page_cache_bytes",
            "failed_logins_per_minute",
            "requests_per_minute",
            "key_requests_per_minute",
            "failed_auth_per_minute",
            "max_in_flight",
            "admission_wait_ms",
            "events_coalesce_ms",
            "events_busy_coalesce_ms",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{env_name(name)} must not be negative")
        positive = {
            # 0 would mean "no timeout" to PostgreSQL, for statements and idle transactions.
            "statement_timeout_ms": self.statement_timeout_ms,
            "pool_max_size": self.pool_max_size,
            "replica_pool_max_size": self.replica_pool_max_size,
            "pool_max_queries": self.pool_max_queries,
            "account_token_seconds": self.account_token_seconds,
            "max_content_bytes": self.max_content_bytes,
            "max_metadata_bytes": self.max_metadata_bytes,
            "max_batch": self.max_batch,
            "max_page": self.max_page,
            "default_page": self.default_page,
            "max_page_bytes": self.max_page_bytes,
            "max_body_bytes": self.max_body_bytes,
            "bulk_delete_batch": self.bulk_delete_batch,
            "max_file_bytes": self.max_file_bytes,
            "max_conversation_file_bytes": self.max_conversation_file_bytes,
            "workers": self.workers,
            "user_max_conversations": self.user_max_conversations,
            "user_max_bytes": self.user_max_bytes,
            "visitor_max_conversations": self.visitor_max_conversations,
            "visitor_max_bytes": self.visitor_max_bytes,
            "events_buffer": self.events_buffer,
        }
        for name, value in positive.items():
            if value < 1:
                raise SettingsError(f"{env_name(name)} must be at least 1, got {value}")
        if not 0 <= self.pool_min_size <= self.pool_max_size:
            raise SettingsError(f"{env_name('pool_min_size')} must be between 0 and pool_max_size")
        self._check_pool_mode()
        if self.default_page > self.max_page:
            raise SettingsError(f"{env_name('default_page')} must not exceed max_page")
        if self.jwt_secret and len(self.jwt_secret) < MIN_JWT_SECRET_LENGTH:
            raise SettingsError(
                f"{env_name('jwt_secret')} must be at least {MIN_JWT_SECRET_LENGTH} characters"
            )
        self._check_observability()
        if self.accounts and not self.jwt_secret:
            raise SettingsError(
                f"{env_name('accounts')} needs {env_name('jwt_secret')} to sign user tokens"
            )
        self._check_demo()

    def _check_pool_mode(self) -> None:
        if self.pool_mode == "transaction" and not self.direct_database_url:
            raise SettingsError(
                f"{env_name('pool_mode')}=transaction needs {env_name('direct_database_url')}: "
                "LISTEN, the prune's lock and migrations cannot go through a transaction pooler"
            )

    @property
    def session_database_url(self) -> str:
        """Where a connection that needs its session to itself goes (not through a pooler)."""
        return self.direct_database_url or self.database_url

    def _check_observability(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{env_name('log_format')} must be text or json")
        if self.metrics_token and len(self.metrics_token) < MIN_METRICS_TOKEN_LENGTH:
            raise SettingsError(
                f"{env_name('metrics_token')} must be at least {MIN_METRICS_TOKEN_LENGTH} "
                "characters"
            )

    def _check_demo(self) -> None:
        if self.demo and not (self.jwt_secret and self.allow_anonymous):
            raise SettingsError(
                f"{env_name('demo')} needs {env_name('jwt_secret')} (its log-in signs user "
                f"tokens) and {env_name('allow_anonymous')} (its visitors chat anonymously)"
            )

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def replica_url_list(self) -> list[str]:
        return [url.strip() for url in self.replica_urls.split(",") if url.strip()]


def env_name(field: str) -> str:
    return "DATABASE_URL" if field == "database_url" else ENV_PREFIX + field.upper()


def process_environment(dotenv_file: str = DOTENV_FILE) -> dict[str, str]:
    """The process's environment over the variables ``dotenv_file`` sets, when it exists: what
    the real environment sets (even to "") wins over the file. The process's environment itself
    is left alone."""
    if not os.path.isfile(dotenv_file):
        return dict(os.environ)
    try:
        from_file = dotenv_values(dotenv_file)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read {os.path.abspath(dotenv_file)}: {exc}") from exc
    # A line without "=" names a variable without a value: nothing to set.
    return {
        **{name: value for name, value in from_file.items() if value is not None},
        **os.environ,
    }


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``environ``; by default from the process's environment and ``.env``."""
    environ = process_environment() if environ is None else dict(environ)
    values = {
        field: environ[env_name(field)]
        for field in Settings.__struct_fields__
        if environ.get(env_name(field), "") != ""
    }
    try:
        # strict=False converts the environment's strings into ints and floats.
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message, field = field_of(str(exc))
        raise SettingsError(f"{env_name(field) if field else 'settings'}: {message}") from exc


@cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return settings_from_env()
