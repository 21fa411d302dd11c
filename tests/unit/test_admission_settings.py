"""CHATKEEP_MAX_IN_FLIGHT and CHATKEEP_ADMISSION_WAIT_MS: off by default, never negative."""

from __future__ import annotations

import pytest

from service.core.settings import SettingsError, settings_from_env


def test_the_gate_is_off_by_default() -> None:
    settings = settings_from_env({})
    assert settings.max_in_flight == 0
    assert settings.admission_wait_ms == 100


@pytest.mark.parametrize("name", ["CHATKEEP_MAX_IN_FLIGHT", "CHATKEEP_ADMISSION_WAIT_MS"])
def test_a_negative_value_is_refused_by_name(name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        settings_from_env({name: "-1"})
