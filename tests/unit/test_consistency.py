"""Consistency tokens (service/core/consistency.py) and the replica settings."""

from __future__ import annotations

import pytest

from service.core.consistency import format_position, parse_position
from service.core.errors import InvalidInput
from service.core.settings import SettingsError, settings_from_env

HEADER = "Chatkeep-Consistency"


@pytest.mark.parametrize(
    ("text", "position"),
    [("0/0", 0), ("0/16B3748", 0x16B3748), ("16/B374D848", 0x16 << 32 | 0xB374D848)],
)
def test_a_token_is_the_log_position_as_postgresql_writes_it(text: str, position: int) -> None:
    assert parse_position(text, field=HEADER) == position
    assert format_position(position) == text
    assert parse_position(f" {text.lower()} ", field=HEADER) == position


@pytest.mark.parametrize("text", ["", "16", "16/", "/1", "x/1", "1/123456789", "1/2/3", "+1/0"])
def test_a_malformed_token_names_its_field(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_position(text, field=HEADER)
    assert raised.value.field == HEADER


def test_replica_settings_are_read_and_checked() -> None:
    settings = settings_from_env(
        {"CHATKEEP_REPLICA_URLS": " postgresql://a/db , postgres://b/db,", "X": "y"}
    )
    assert settings.replica_url_list == ["postgresql://a/db", "postgres://b/db"]
    assert settings_from_env({}).replica_url_list == []
    for name, value in [
        ("REPLICA_POOL_MAX_SIZE", "0"),
        ("REPLICA_MAX_LAG_SECONDS", "0"),
        ("REPLICA_POLL_SECONDS", "-1"),
    ]:
        with pytest.raises(SettingsError, match=f"CHATKEEP_{name}"):
            settings_from_env({f"CHATKEEP_{name}": value})
