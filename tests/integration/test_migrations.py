"""Migrations: apply, roll back and apply again; plain `yoyo apply` with the repo's yoyo.ini."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from service.db import migrations
from service.db.dburl import yoyo_url
from service.db.resources import MIGRATIONS_DIR

REPO = Path(__file__).resolve().parents[2]
# Everything a migration may create in the public schema, as comparable text.
SCHEMA_SQL = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '%yoyo%'
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename NOT LIKE '%yoyo%'
UNION ALL SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE '%yoyo%'
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
ORDER BY 1
"""


def schema(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [line for (line,) in conn.execute(SCHEMA_SQL).fetchall()]


def apply_first(url: str, count: int) -> None:
    backend = get_backend(yoyo_url(url))
    try:
        backend.apply_migrations(backend.to_apply(read_migrations(str(MIGRATIONS_DIR))[:count]))
    finally:
        backend.connection.close()


def test_each_rollback_restores_the_schema_before_its_migration(empty_database_url: str) -> None:
    expected = migrations.expected_migrations()
    assert expected[:3] == ["0001.conversations", "0002.messages", "0003.identity"]
    snapshots = [schema(empty_database_url)]
    for count in range(1, len(expected) + 1):
        apply_first(empty_database_url, count)
        snapshots.append(schema(empty_database_url))
        assert snapshots[-1] != snapshots[-2], f"{expected[count - 1]} changed nothing"
    assert migrations.apply(empty_database_url) == []

    for count in reversed(range(len(expected))):
        assert migrations.rollback(empty_database_url, count=1) == [expected[count]]
        assert schema(empty_database_url) == snapshots[count], f"rollback of {expected[count]}"

    assert migrations.apply(empty_database_url) == expected
    assert schema(empty_database_url) == snapshots[-1]


def test_every_migration_has_a_rollback() -> None:
    for migration in migrations.expected_migrations():
        assert (MIGRATIONS_DIR / f"{migration}.rollback.sql").is_file(), migration


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg"])
def test_plain_yoyo_apply_uses_database_url(empty_database_url: str, scheme: str) -> None:
    url = empty_database_url.replace("postgresql://", f"{scheme}://", 1)
    yoyo = Path(sys.executable).with_name("yoyo")
    result = subprocess.run(
        [str(yoyo), "apply"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert migrations.apply(empty_database_url) == []  # yoyo applied every one
