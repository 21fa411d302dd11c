"""Optional OpenTelemetry tracing (CHATKEEP_TRACING, README "Observability"): a server span per
request named by its route and carrying its request id, and a span per statement; without the
packages the service runs untraced and says so."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from service.api.tracing import MISSING
from service.app import create_app
from tests.helpers import bearer, messages_body, new_conversation
from tests.integration.conftest import make_settings

sdk = pytest.importorskip("opentelemetry.sdk.trace")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
export = pytest.importorskip("opentelemetry.sdk.trace.export")
trace = pytest.importorskip("opentelemetry.trace")
asyncpg_instrumentation = pytest.importorskip("opentelemetry.instrumentation.asyncpg")


@pytest.fixture
def spans() -> Iterator[object]:
    """Spans of this test, through the process's one tracer provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = in_memory.InMemorySpanExporter()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        exporter.shutdown()  # the processor stays, exporting nowhere
        asyncpg_instrumentation.AsyncPGInstrumentor().uninstrument()


async def test_requests_and_statements_are_traced(
    database_url: str, api_key: str, spans: object
) -> None:
    settings = make_settings(database_url, tracing="true")
    async with AsyncTestClient(app=create_app(settings)) as client:
        _, url = new_conversation()
        headers = {**bearer(api_key), "X-Request-ID": "traced-1"}
        assert (
            await client.post(url, json=messages_body("hi"), headers=headers)
        ).status_code == 201
    finished = spans.get_finished_spans()  # type: ignore[attr-defined]
    servers = [span for span in finished if span.kind == trace.SpanKind.SERVER]
    assert [span.name for span in servers] == ["POST /v1/conversations/{conversation_id}/messages"]
    assert servers[0].attributes["http.request.id"] == "traced-1"
    # The append's statements in the request's trace (the listener's run in traces of their own).
    statements = [
        span
        for span in finished
        if span.kind == trace.SpanKind.CLIENT
        and span.context.trace_id == servers[0].context.trace_id
    ]
    assert len(statements) >= 2, [span.name for span in finished]


async def test_without_the_packages_the_service_runs_untraced(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "litestar.plugins.opentelemetry", None)
    with caplog.at_level(logging.WARNING):
        app = create_app(make_settings(database_url, tracing="true"))
    assert MISSING in caplog.text
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/live")).status_code == 200
