"""Schema migrations: yoyo over the plain SQL files in ``migrations/``.

yoyo is synchronous and uses psycopg 3; its URL is derived from DATABASE_URL (one source of truth).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from yoyo import get_backend, read_migrations

from service.db.dburl import yoyo_url
from service.db.resources import MIGRATIONS_DIR

ROLLBACK_SUFFIX = ".rollback.sql"


def expected_migrations() -> list[str]:
    """Ids of every migration this version of the service ships, in order."""
    return sorted(
        path.name.removesuffix(".sql")
        for path in MIGRATIONS_DIR.glob("*.sql")
        if not path.name.endswith(ROLLBACK_SUFFIX)
    )


@contextmanager
def _locked_backend(database_url: str) -> Iterator[tuple[Any, Any]]:
    backend = get_backend(yoyo_url(database_url))
    try:
        # yoyo's lock keeps two deploys from migrating the same database at once.
        with backend.lock():
            yield backend, read_migrations(str(MIGRATIONS_DIR))
    finally:
        backend.connection.close()


def apply(database_url: str) -> list[str]:
    """Apply every pending migration; returns the ids applied."""
    with _locked_backend(database_url) as (backend, migrations):
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
        return [migration.id for migration in pending]


def rollback(database_url: str, count: int | None = 1) -> list[str]:
    """Roll back the last ``count`` applied migrations (all when None); returns their ids."""
    with _locked_backend(database_url) as (backend, migrations):
        applied = backend.to_rollback(migrations)
        chosen = applied if count is None else applied[:count]
        backend.rollback_migrations(chosen)
        return [migration.id for migration in chosen]


def pending(applied: set[str]) -> list[str]:
    """The shipped migrations missing from ``applied``."""
    return [migration for migration in expected_migrations() if migration not in applied]
