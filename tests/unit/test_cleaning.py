"""The import's cleaning rules (README "Importing and exporting", bad rows): each odd value is
fixed or refused, and reported; nothing is dropped silently."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid5

import pytest

from service.transfer.cleaning import (
    FALLBACK_ROLE,
    ID_NAMESPACE,
    Cleaner,
    parse_time,
    stable_id,
)
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
        # Any other role name is kept, lowercased.
        ("narrator", "narrator"),
        (" Critic ", "critic"),
        ("tool_call", "tool_call"),
        ("agent-2", "agent-2"),
        ("r" * 32, "r" * 32),
    ],
)
def test_roles_their_aliases_and_the_apps_own_are_kept(
    cleaner: Cleaner, lines: list[str], role: object, expected: str
) -> None:
    assert cleaner.role(role, "row") == (expected, None)
    assert lines == []


@pytest.mark.parametrize(
    ("role", "source"),
    [
        ("tool call", "tool call"),
        ("2nd", "2nd"),
        ("r" * 33, "r" * 33),
        ("Ассистент", "Ассистент"),
        ("role.name", "role.name"),
    ],
)
def test_a_role_that_is_no_role_name_falls_back_and_is_kept_in_metadata(
    cleaner: Cleaner, lines: list[str], role: str, source: str
) -> None:
    assert cleaner.role(role, "row 9") == (FALLBACK_ROLE, source)
    assert lines == [
        f"row 9: role {source!r} is not a role name; stored as 'unknown', "
        "the source's role in metadata _source_role (fixed)"
    ]
    assert cleaner.report.skipped == 0


def test_a_remembered_role_is_stored_the_same_and_one_holding_nul_reported_each_time(
    cleaner: Cleaner, lines: list[str]
) -> None:
    assert [cleaner.role(b"Human", "row") for _ in range(3)] == [("user", None)] * 3
    assert [cleaner.role(" Tool ", "row") for _ in range(2)] == [("tool", None)] * 2
    assert lines == []
    assert [cleaner.role(b"user\x00", f"row {n}") for n in (1, 2)] == [("user", None)] * 2
    assert lines == [f"row {n}: role contains NUL characters; removed (fixed)" for n in (1, 2)]


@pytest.mark.parametrize("role", [None, "", "  ", b""])
def test_a_missing_role_falls_back(cleaner: Cleaner, lines: list[str], role: object) -> None:
    assert cleaner.role(role, "row 3") == (FALLBACK_ROLE, None)
    assert lines == ["row 3: no role; stored as 'unknown' (fixed)"]


def test_external_ids_are_the_source_ids_as_text(cleaner: Cleaner, lines: list[str]) -> None:
    assert cleaner.external_id(42, "row 1", "id") == "42"
    assert cleaner.external_id(b"chat-a", "row 1", "id") == "chat-a"
    assert cleaner.external_id(" Keep Me ", "row 1", "id") == " Keep Me "
    assert cleaner.external_id(None, "row 1", "id") is None
    assert cleaner.external_id("", "row 1", "id") is None
    assert cleaner.external_id("x" * 255, "row 1", "id") == "x" * 255
    assert lines == []
    assert cleaner.external_id("x" * 256, "row 2", "id") is None
    assert lines == ["row 2: id is over 255 characters; not kept as external_id (fixed)"]


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
        ("1700000000", datetime.fromtimestamp(1_700_000_000, UTC)),  # epoch as text
        (b"1700000000000", datetime.fromtimestamp(1_700_000_000, UTC)),
        ("1700000000.25", datetime.fromtimestamp(1_700_000_000.25, UTC)),
        ("2024-03-01T09:00:00.000000+00:00", datetime(2024, 3, 1, 9, tzinfo=UTC)),
        ("20240301", datetime(2024, 3, 1, tzinfo=UTC)),  # ISO 8601 basic, not epoch seconds
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
    assert cleaner.timestamp("nan", "row 5", "created_at") is None
    assert lines == [
        "row 3: created_at 'yesterday' is not a time; treated as missing (fixed)",
        f"row 4: created_at {10**30!r} is not a time; treated as missing (fixed)",
        "row 5: created_at 'nan' is not a time; treated as missing (fixed)",
    ]


def test_parse_time_reports_nothing_and_reads_what_timestamp_reads() -> None:
    assert parse_time("2024-03-01 09:00:05") == datetime(2024, 3, 1, 9, 0, 5, tzinfo=UTC)
    assert parse_time(b"2024-03-01T09:00:00Z") == datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert parse_time("later") is None
    assert parse_time(None) is None
    assert parse_time(True) is None


def test_ids_are_kept_when_uuids_and_derived_stably_otherwise() -> None:
    kept = UUID(int=7)
    assert stable_id(str(kept), "anything") == kept
    assert stable_id(b"42", "sqlite") == uuid5(ID_NAMESPACE, "sqlite\x1f42")
    assert stable_id(42, "sqlite") == stable_id("42", "sqlite")
    assert stable_id("42", "sqlite") != stable_id("42", "files")
