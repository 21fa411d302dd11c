"""Where the SQL files and migrations are: inside the package when installed from a wheel,
at the repository's top level when running from a checkout (editable install)."""

from __future__ import annotations

from pathlib import Path

# The ``service`` package: service/db/resources.py -> service/
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _resource_dir(name: str) -> Path:
    bundled = PACKAGE_DIR / name
    return bundled if bundled.is_dir() else PACKAGE_DIR.parent / name


SQL_DIR = _resource_dir("sql")
MIGRATIONS_DIR = _resource_dir("migrations")
