"""Optional OpenTelemetry tracing (CHATKEEP_TRACING): a server span per request, named by its
route, through Litestar's OpenTelemetry plugin (opentelemetry-instrumentation-asgi), and a
span per statement through opentelemetry-instrumentation-asyncpg when it is installed.

Spans go to the process's tracer provider: the OpenTelemetry SDK configured as usual (for
instance by ``opentelemetry-instrument``, which reads OTEL_* variables). Without the packages
the service says so once and runs untraced."""

from __future__ import annotations

import logging
from typing import Any

from litestar.config.app import AppConfig
from litestar.enums import ScopeType
from litestar.plugins import InitPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from service.core import request_ids
from service.core.settings import Settings

log = logging.getLogger(__name__)
MISSING = (
    "CHATKEEP_TRACING is on but the OpenTelemetry packages are not installed "
    "(pip install 'chatkeep[tracing]'); serving without traces"
)


def tracing_plugins(settings: Settings) -> list[InitPlugin]:
    """The plugin that traces requests, when tracing is on and can be."""
    if not settings.tracing:
        return []
    try:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
    except ImportError:
        log.warning(MISSING)
        return []
    _instrument_asyncpg()
    return [
        OpenTelemetryPlugin(OpenTelemetryConfig(server_request_hook_handler=_tag_request)),
        _NameSpansByRoute(),
    ]


class _NameSpansByRoute(InitPlugin):
    """The server span starts before routing, named by the raw path (an id in every name);
    once routed, it takes the route template's name, as OpenTelemetry's conventions ask."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(_name_span_by_route)
        return app_config


def _name_span_by_route(app: ASGIApp) -> ASGIApp:
    from opentelemetry import trace

    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if span.is_recording() and scope["type"] == ScopeType.HTTP:
            route = scope["path_template"]
            span.update_name(f"{scope['method']} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return named


def _instrument_asyncpg() -> None:
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    except ImportError:
        log.info("opentelemetry-instrumentation-asyncpg is not installed: no statement spans")
        return
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def _tag_request(span: Any, scope: Any) -> None:
    """The request id on the span, so a log line and its trace find each other."""
    if span.is_recording():
        span.set_attribute("http.request.id", request_ids.current.get())
