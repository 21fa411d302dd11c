"""Settings from the environment and DATABASE_URL translation (no cloud needed: pure functions)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from service.core.settings import SettingsError, settings_from_env
from service.db.dburl import DatabaseUrlError, asyncpg_dsn, redacted, yoyo_url


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db:5432/app",
        "postgres://u:p@db:5432/app",
        "postgresql+asyncpg://u:p@db:5432/app",
    ],
)
def test_accepted_schemes_map_to_each_driver(url: str) -> None:
    assert asyncpg_dsn(url) == "postgresql://u:p@db:5432/app"
    assert yoyo_url(url) == "postgresql+psycopg://u:p@db:5432/app"


def test_sslmode_is_kept_for_both_drivers() -> None:
    url = "postgres://u:p@db.example/app?sslmode=verify-full&sslrootcert=/ca.pem"
    assert query(asyncpg_dsn(url)) == {"sslmode": ["verify-full"], "sslrootcert": ["/ca.pem"]}
    assert query(yoyo_url(url))["sslmode"] == ["verify-full"]


def test_channel_binding_goes_to_libpq_only_and_forces_tls() -> None:
    url = "postgresql://u:p@ep-x.neon.tech/app?channel_binding=require"
    assert query(asyncpg_dsn(url)) == {"sslmode": ["require"]}
    assert query(yoyo_url(url)) == {"channel_binding": ["require"], "sslmode": ["require"]}
    serverless = "postgresql://u:p@h/app?sslmode=require&channel_binding=prefer"
    assert query(asyncpg_dsn(serverless)) == {"sslmode": ["require"]}


def test_sqlalchemy_ssl_flag_becomes_sslmode() -> None:
    assert query(asyncpg_dsn("postgresql+asyncpg://h/app?ssl=true")) == {"sslmode": ["require"]}


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "http://h/db",
        "postgresql://h/db?sslmode=sometimes",
        "postgresql://h/db?channel_binding=always",
    ],
)
def test_unusable_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(DatabaseUrlError):
        asyncpg_dsn(url)


def test_password_is_redacted() -> None:
    assert redacted("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"


def test_settings_read_and_convert_the_environment() -> None:
    settings = settings_from_env(
        {
            "DATABASE_URL": "postgresql://h/db",
            "CHATKEEP_POOL_MAX_SIZE": "7",
            "CHATKEEP_COMMAND_TIMEOUT": "2.5",
            "CHATKEEP_MAX_BATCH": "10",
            "UNRELATED": "x",
        }
    )
    assert settings.database_url == "postgresql://h/db"
    assert settings.pool_max_size == 7
    assert settings.command_timeout == 2.5
    assert settings.max_batch == 10
    assert settings.max_content_bytes == 1024 * 1024


@pytest.mark.parametrize(
    "environ",
    [
        {"CHATKEEP_POOL_MAX_SIZE": "many"},
        {"CHATKEEP_MAX_PAGE": "0"},
        {"CHATKEEP_POOL_MIN_SIZE": "50"},
        {"CHATKEEP_DEFAULT_PAGE": "5000"},
    ],
)
def test_bad_settings_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="CHATKEEP_"):
        settings_from_env(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JWT_LEEWAY_SECONDS", "nan"),
        ("JWT_LEEWAY_SECONDS", "inf"),
        ("JWT_LEEWAY_SECONDS", "-5"),
        ("KEY_CACHE_SECONDS", "-1"),
        ("POOL_ACQUIRE_TIMEOUT", "inf"),
        ("POOL_ACQUIRE_TIMEOUT", "0"),
        ("CONNECT_TIMEOUT", "-1"),
        ("COMMAND_TIMEOUT", "nan"),
        ("UPLOAD_IDLE_SECONDS", "0"),
        ("UPLOAD_DEADLINE_SECONDS", "-inf"),
        ("STATEMENT_TIMEOUT_MS", "0"),
    ],
)
def test_numbers_that_would_switch_a_check_off_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"CHATKEEP_{name} "):
        settings_from_env({f"CHATKEEP_{name}": value})


def test_quotas_and_rate_limits_have_generous_defaults_and_are_read_from_the_environment() -> None:
    defaults = settings_from_env({})
    assert (defaults.user_max_conversations, defaults.user_max_bytes) == (10_000, 1024**3)
    assert (defaults.visitor_max_conversations, defaults.visitor_max_bytes) == (100, 64 * 1024**2)
    assert defaults.key_requests_per_minute == 0  # API keys: unlimited
    settings = settings_from_env(
        {"CHATKEEP_USER_MAX_BYTES": "2048", "CHATKEEP_REQUESTS_PER_MINUTE": "0"}
    )
    assert settings.user_max_bytes == 2048
    assert settings.requests_per_minute == 0  # switched off


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("USER_MAX_CONVERSATIONS", "0"),
        ("USER_MAX_BYTES", "-1"),
        ("VISITOR_MAX_CONVERSATIONS", "0"),
        ("VISITOR_MAX_BYTES", "0"),
        ("REQUESTS_PER_MINUTE", "-1"),
        ("KEY_REQUESTS_PER_MINUTE", "-5"),
        ("FAILED_AUTH_PER_MINUTE", "-1"),
    ],
)
def test_quotas_below_one_and_negative_rates_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"CHATKEEP_{name} "):
        settings_from_env({f"CHATKEEP_{name}": value})
