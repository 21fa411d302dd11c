"""The import's cleaning rules (README "Importing and exporting", bad rows): each odd value is
fixed or refused, and reported; nothing is dropped silently."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid5

import pytest

from service.transfer.cleaning import ID_NAMESPACE, Cleaner, stable_id
from service.transfer.report import Report


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def cleaner(lines: list[str]) -> Cleaner:
    return Cleaner(Report(write=lines.append))


def test_text_loses_nul_and_bad_utf8_and_says_so(cleaner: Cleaner, lines: list[str]) -> None:
    assert cleaner.text("a\x00b", "row 1", "content") == "ab"
    assert cleaner.text(b"caf\xe9", "row 2", "content") == "caf\ufffd"
    assert cleaner.text(b"ok", "row 3", "content") == "ok"
    assert cleaner.text(None, "row 4", "content") is None
    assert lines == [
        "row 1: content contains NUL characters; removed (fixed)",
        "row 2: content is not UTF-8; bad bytes -> U+FFFD (fixed)",
    ]
    assert (cleaner.report.fixed, cleaner.report.skipped) == (2, 0)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("user", "user"),
        (" Human ", "user"),
        ("AI", "assistant"),
        ("bot", "assistant"),
        ("model", "assistant"),
        ("function", "tool"),
        ("developer", "system"),
        (b"tool", "tool"),
    ],
)
def test_roles_and_their_aliases(cleaner: Cleaner, role: object, expected: str) -> None:
    assert cleaner.role(role, "row") == expected


def test_an_unknown_role_skips_the_message(cleaner: Cleaner, lines: list[str]) -> None:
    assert cleaner.role("narrator", "row 9") is None
    assert lines == ["row 9: unknown role 'narrator' (skipped)"]
    assert cleaner.report.skipped == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ('{"a": 1}', {"a": 1}),
        (b'{"a": [1, "x"]}', {"a": [1, "x"]}),
        ("not json", {"_raw_metadata": "not json"}),
        ("[1, 2]", {"_metadata": [1, 2]}),
        ('{"k\\u0000": "v\\u0000"}', {"k": "v"}),
        ({"nested": {"x": "a\x00"}}, {"nested": {"x": "a"}}),
    ],
)
def test_metadata_is_always_an_object(cleaner: Cleaner, value: object, expected: object) -> None:
    assert cleaner.metadata(value, "row") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),  # no zone: UTC
        ("2024-01-02T03:04:05+02:00", datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)),
        (1_700_000_000, datetime.fromtimestamp(1_700_000_000, UTC)),
        (1_700_000_000_000, datetime.fromtimestamp(1_700_000_000, UTC)),  # milliseconds
        (None, None),
        ("", None),
    ],
)
def test_times_in_their_usual_forms(
    cleaner: Cleaner, value: object, expected: datetime | None
) -> None:
    assert cleaner.timestamp(value, "row", "created_at") == expected


def test_a_time_that_cannot_be_read_is_missing(cleaner: Cleaner, lines: list[str]) -> None:
    assert cleaner.timestamp("yesterday", "row 3", "created_at") is None
    assert cleaner.timestamp(10**30, "row 4", "created_at") is None
    assert lines == [
        "row 3: created_at 'yesterday' is not a time; treated as missing (fixed)",
        f"row 4: created_at {10**30!r} is not a time; treated as missing (fixed)",
    ]


def test_ids_are_kept_when_uuids_and_derived_stably_otherwise() -> None:
    kept = UUID(int=7)
    assert stable_id(str(kept), "anything") == kept
    assert stable_id(b"42", "sqlite") == uuid5(ID_NAMESPACE, "sqlite\x1f42")
    assert stable_id(42, "sqlite") == stable_id("42", "sqlite")
    assert stable_id("42", "sqlite") != stable_id("42", "files")
