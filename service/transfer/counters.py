"""What imports and exports add to the metrics (README "Observability"), and the text file a
batch command leaves for node_exporter's textfile collector: `chatkeep import` and `chatkeep
export` are processes of their own, which no scraper reaches."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile

from service.core import metrics
from service.transfer import ndjson
from service.transfer.report import Report


def count_import(report: Report) -> None:
    """A finished import's records and bad rows (a dry run writes nothing: counts nothing)."""
    for kind, written in (
        ("conversations", report.conversations_imported),
        ("messages", report.messages_imported),
        ("files", report.files_imported),
        ("prompt_versions", report.prompts_imported),
    ):
        metrics.IMPORTED.labels(kind).inc(written)
    metrics.IMPORT_BAD_ROWS.labels("fixed").inc(report.fixed)
    metrics.IMPORT_BAD_ROWS.labels("skipped").inc(report.skipped)


def count_export(end: ndjson.End) -> None:
    """A finished export's records, as its end line counts them."""
    for kind, written in (
        ("conversations", end.conversations),
        ("messages", end.messages),
        ("files", end.files),
        ("prompt_versions", end.prompt_versions),
    ):
        metrics.EXPORTED.labels(kind).inc(written)


def write_textfile(path: Path) -> None:
    """The import and export counters, in Prometheus text format, written atomically (a
    temporary file renamed over ``path``), as the textfile collector wants."""
    registry = CollectorRegistry()
    for counter in (metrics.IMPORTED, metrics.IMPORT_BAD_ROWS, metrics.EXPORTED):
        registry.register(counter)
    write_to_textfile(str(path), registry)
