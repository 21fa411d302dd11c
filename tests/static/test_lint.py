"""Static checks run as part of the test command, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

CHECKS = {
    "ruff check": [str(BIN / "ruff"), "check", "."],
    "ruff format": [str(BIN / "ruff"), "format", "--check", "."],
    "mypy": [str(BIN / "mypy")],
    # The layering contract in pyproject.toml ([tool.importlinter]; docs/ARCHITECTURE.md).
    "import-linter": [str(BIN / "lint-imports")],
    # No image can be pulled or built here; hadolint lints the Containerfile instead.
    "hadolint": [str(BIN / "hadolint"), "Containerfile"],
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_static_check_passes(name: str) -> None:
    result = subprocess.run(
        CHECKS[name], cwd=REPO, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
