"""Migrations: apply, roll back and apply again; plain `yoyo apply` with the repo's yoyo.ini."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from service import migrations
from service.resources import MIGRATIONS_DIR

REPO = Path(__file__).resolve().parent.parent
TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = 'public' AND table_name NOT LIKE '%%yoyo%%' ORDER BY table_name"
)


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [name for (name,) in conn.execute(TABLES_SQL).fetchall()]


def test_apply_rollback_apply(empty_database_url: str) -> None:
    expected = migrations.expected_migrations()
    assert expected == ["0001.conversations", "0002.messages"]
    assert migrations.apply(empty_database_url) == expected
    assert tables(empty_database_url) == ["conversations", "messages"]
    assert migrations.apply(empty_database_url) == []

    assert migrations.rollback(empty_database_url, count=1) == ["0002.messages"]
    assert tables(empty_database_url) == ["conversations"]
    assert migrations.rollback(empty_database_url, count=None) == ["0001.conversations"]
    assert tables(empty_database_url) == []

    assert migrations.apply(empty_database_url) == expected
    assert tables(empty_database_url) == ["conversations", "messages"]


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
    assert tables(empty_database_url) == ["conversations", "messages"]
