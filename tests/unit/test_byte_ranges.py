"""Download semantics: validators, single byte ranges (RFC 9110) and the headers that make a
browser save rather than render."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from msgspec import Raw

from service.api import downloads
from service.core.errors import RangeNotSatisfiable
from service.core.schemas import FileInfo

SHA = "ab" * 32
FILE = FileInfo(
    uuid4(), uuid4(), "report.pdf", "application/pdf", 1000, SHA, datetime.now(UTC), Raw(b"{}")
)
ETAG = f'"{SHA}"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (0, 999)),
        ("bytes=0-99", (0, 99)),
        ("bytes=900-", (900, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),  # more than the file: all of it
        ("bytes=990-5000", (990, 999)),  # the end is clipped
        ("bytes=0-1,5-6", (0, 999)),  # several ranges: the whole file is allowed
        ("items=0-1", (0, 999)),  # another unit: ignored
        ("bytes=-", (0, 999)),
    ],
)
def test_a_range_selects_inclusive_bytes(header: str | None, expected: tuple[int, int]) -> None:
    assert downloads.byte_range(header, None, FILE) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=50-10"])
def test_a_range_outside_the_file_is_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as refused:
        downloads.byte_range(header, None, FILE)
    assert refused.value.size == 1000
    assert refused.value.field == "Range"


def test_if_range_with_another_validator_gets_the_whole_file() -> None:
    assert downloads.byte_range("bytes=0-9", ETAG, FILE) == (0, 9)
    assert downloads.byte_range("bytes=0-9", '"other"', FILE) == (0, 999)


@pytest.mark.parametrize(
    ("if_none_match", "expected"),
    [
        (None, False),
        ("", False),
        (ETAG, True),
        (f"W/{ETAG}", True),
        (f'"x", {ETAG}', True),
        ("*", True),
        ('"x"', False),
    ],
)
def test_not_modified_matches_any_listed_validator(
    if_none_match: str | None, expected: bool
) -> None:
    assert downloads.not_modified(if_none_match, FILE) is expected


def test_headers_of_a_partial_download() -> None:
    sent = downloads.headers(FILE, 10, 19)
    assert sent["Content-Length"] == "10"
    assert sent["Content-Range"] == "bytes 10-19/1000"
    assert sent["ETag"] == ETAG
    assert sent["X-Content-Type-Options"] == "nosniff"
    assert "Content-Range" not in downloads.headers(FILE, 0, 999)


def test_content_disposition_keeps_the_exact_name_and_a_safe_fallback() -> None:
    value = downloads.content_disposition('rapport "final"\\été.pdf')
    assert value.startswith('attachment; filename="rapport _final__?t?.pdf"; ')
    assert value.endswith("filename*=UTF-8''rapport%20%22final%22%5C%C3%A9t%C3%A9.pdf")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=" + "9" * 5000 + "-", None),  # far beyond the file: unsatisfiable
        ("bytes=0-" + "9" * 5000, (0, 999)),
        ("bytes=-" + "9" * 5000, (0, 999)),
    ],
)
def test_numbers_of_thousands_of_digits_are_positions_beyond_the_file(
    header: str, expected: tuple[int, int] | None
) -> None:
    if expected is None:
        with pytest.raises(RangeNotSatisfiable):
            downloads.byte_range(header, None, FILE)
    else:
        assert downloads.byte_range(header, None, FILE) == expected
