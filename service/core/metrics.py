"""What the service counts, in Prometheus's terms (README "Observability").

Every worker process counts into these; ``registry()`` is what ``GET /metrics`` reports. Under
``chatkeep serve --workers N`` (N > 1) the server sets PROMETHEUS_MULTIPROC_DIR before the
workers start, so prometheus-client keeps each worker's values in a file there and the registry
adds them all up: whichever worker answers a scrape reports the whole server. Gauges of things a
worker holds (connections, streams) count live workers only ("livesum"); a worker leaving says
so (``process_gone``) so its last values stop counting.
"""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    values,
)

# Route templates (/v1/conversations/{conversation_id:str}), never raw paths: one series per
# route however many ids there are. Requests no route matched share one label.
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "chatkeep_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "chatkeep_http_request_duration_seconds",
    "Seconds from a request's arrival to its response's last byte (an event stream's whole "
    "life), by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POOL_CONNECTIONS = Gauge(
    "chatkeep_db_pool_connections",
    "Connections the database pools hold (open, idle or in use), sampled every second.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "chatkeep_db_pool_in_use",
    "Pooled connections checked out by requests, sampled every second.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITERS = Gauge(
    "chatkeep_db_pool_waiters",
    "Requests waiting for a pooled connection, sampled every second.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "chatkeep_db_pool_timeouts",
    "Requests that gave up waiting for a pooled connection (answered 503).",
)
ADMISSION_REFUSALS = Counter(
    "chatkeep_admission_refusals",
    "Requests refused (503) because the worker had CHATKEEP_MAX_IN_FLIGHT in the database path.",
)
DB_ERRORS = Counter(
    "chatkeep_db_errors",
    "Database errors that reached a response, by driver exception class.",
    ["error"],
)
EVENT_STREAMS = Gauge(
    "chatkeep_events_streams_open",
    "Live event streams open, by kind (conversation, owner).",
    ["kind"],
    multiprocess_mode="livesum",
)
IMPORTED = Counter(
    "chatkeep_import_records",
    "Records written by imports, by kind (conversations, messages, files, prompt_versions).",
    ["kind"],
)
IMPORT_BAD_ROWS = Counter(
    "chatkeep_import_bad_rows",
    "Bad rows an import met, by what was done about them (fixed, skipped).",
    ["action"],
)
EXPORTED = Counter(
    "chatkeep_export_records",
    "Records written by exports, by kind (conversations, messages, files, prompt_versions).",
    ["kind"],
)


def multiprocess_mode() -> bool:
    """Whether this process's values live in PROMETHEUS_MULTIPROC_DIR (decided by
    prometheus-client when it was first imported, from the environment then)."""
    return values.ValueClass is not values.MutexValue


def registry() -> CollectorRegistry:
    """Every worker's values added up in multiprocess mode, else this process's."""
    if not multiprocess_mode():
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


def process_gone(pid: int | None = None) -> None:
    """A worker leaves: its live gauges stop counting."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]
