"""Settings at start-up: .env in the working directory under the real environment, and the
connection and account settings' rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.core.settings import SettingsError, process_environment, settings_from_env


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of the test's own, with none of the settings below in the
    environment."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "CHATKEEP_POOL_MAX_SIZE",
        "CHATKEEP_POOL_MIN_SIZE",
        "CHATKEEP_POOL_IDLE_LIFETIME",
        "CHATKEEP_MAX_BATCH",
        "CHATKEEP_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_dotenv_sets_what_the_environment_does_not(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text(
        "# settings of this checkout\n"
        "CHATKEEP_POOL_MAX_SIZE=7\n"
        "export CHATKEEP_POOL_IDLE_LIFETIME=30\n"
        'CHATKEEP_LOG_LEVEL="debug"\n'
        "CHATKEEP_MAX_BATCH=20\n"
    )
    monkeypatch.setenv("CHATKEEP_MAX_BATCH", "5")
    settings = settings_from_env()
    assert settings.pool_max_size == 7
    assert settings.pool_idle_lifetime == 30
    assert settings.log_level == "debug"
    # The real environment wins over the file.
    assert settings.max_batch == 5


def test_an_empty_variable_in_the_environment_still_wins(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text("CHATKEEP_MAX_BATCH=20\n")
    monkeypatch.setenv("CHATKEEP_MAX_BATCH", "")
    # Empty means "the default", as it does without a .env.
    assert settings_from_env().max_batch == 100


def test_the_process_environment_is_left_alone(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text("CHATKEEP_POOL_MAX_SIZE=7\nNAMED_ONLY\n")
    environment = process_environment()
    assert environment["CHATKEEP_POOL_MAX_SIZE"] == "7"
    assert "NAMED_ONLY" not in environment
    assert "CHATKEEP_POOL_MAX_SIZE" not in os.environ


def test_no_dotenv_means_the_environment_alone(workdir: Path) -> None:
    assert settings_from_env().pool_max_size == 10


def test_an_explicit_environment_ignores_dotenv(workdir: Path) -> None:
    (workdir / ".env").write_text("CHATKEEP_POOL_MAX_SIZE=7\n")
    assert settings_from_env({}).pool_max_size == 10


def test_a_bad_value_in_dotenv_is_named(workdir: Path) -> None:
    (workdir / ".env").write_text("CHATKEEP_POOL_MAX_SIZE=many\n")
    with pytest.raises(SettingsError, match="CHATKEEP_POOL_MAX_SIZE"):
        settings_from_env()


def test_an_unreadable_dotenv_is_a_settings_error(workdir: Path) -> None:
    (workdir / ".env").write_bytes(b"CHATKEEP_LOG_LEVEL=\xff\xfe\n")
    with pytest.raises(SettingsError, match=r"cannot read .*\.env"):
        settings_from_env()


def test_pool_options_are_read_and_checked() -> None:
    settings = settings_from_env(
        {
            "CHATKEEP_POOL_MIN_SIZE": "0",
            "CHATKEEP_POOL_IDLE_LIFETIME": "2.5",
            "CHATKEEP_POOL_MAX_QUERIES": "100",
        }
    )
    assert (settings.pool_min_size, settings.pool_idle_lifetime) == (0, 2.5)
    assert settings.pool_max_queries == 100
    # 0: idle connections are never closed (asyncpg's meaning too).
    assert settings_from_env({"CHATKEEP_POOL_IDLE_LIFETIME": "0"}).pool_idle_lifetime == 0
    with pytest.raises(SettingsError, match="CHATKEEP_POOL_IDLE_LIFETIME must not be negative"):
        settings_from_env({"CHATKEEP_POOL_IDLE_LIFETIME": "-1"})
    with pytest.raises(SettingsError, match="CHATKEEP_POOL_MAX_QUERIES must be at least 1"):
        settings_from_env({"CHATKEEP_POOL_MAX_QUERIES": "0"})


def test_accounts_are_off_by_default_and_need_a_jwt_secret() -> None:
    defaults = settings_from_env({})
    assert defaults.accounts is False
    assert defaults.account_token_seconds == 3600
    with pytest.raises(SettingsError, match="CHATKEEP_ACCOUNTS needs CHATKEEP_JWT_SECRET"):
        settings_from_env({"CHATKEEP_ACCOUNTS": "true"})
    with pytest.raises(SettingsError, match="CHATKEEP_ACCOUNT_TOKEN_SECONDS must be at least 1"):
        settings_from_env({"CHATKEEP_ACCOUNT_TOKEN_SECONDS": "0"})
    with pytest.raises(SettingsError, match="CHATKEEP_FAILED_LOGINS_PER_MINUTE"):
        settings_from_env({"CHATKEEP_FAILED_LOGINS_PER_MINUTE": "-1"})
