"""File names and media types as stored: what goes back out in headers must be sendable."""

from __future__ import annotations

import pytest

from service.core.attachments import DEFAULT_CONTENT_TYPE, clean_content_type, clean_filename
from service.core.errors import InvalidInput


@pytest.mark.parametrize(
    "value",
    ["text/plain", "image/svg+xml", "text/plain; charset=utf-8", "application/vnd.a.b-c"],
)
def test_media_types_are_kept(value: str) -> None:
    assert clean_content_type(value) == value


def test_no_media_type_is_octet_stream() -> None:
    assert clean_content_type(None) == DEFAULT_CONTENT_TYPE
    assert clean_content_type("") == DEFAULT_CONTENT_TYPE


@pytest.mark.parametrize(
    "value",
    [
        "téxt/plain",  # not a token
        "text/plain; name=\u4e2d",  # not Latin-1: could never be sent back as a header
        "text/plain; name=caf\u00e9",  # Latin-1 but not ASCII
        "text/plain\r\nX-Injected: 1",
        "text",
        "a/b" + "c" * 300,
    ],
)
def test_media_types_a_header_cannot_carry_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_content_type(value)
    assert refused.value.field == "content_type"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\Users\\me\\a.txt", "a.txt"),
        ("/etc/x/y.png", "y.png"),
        ("  spaced.txt ", "spaced.txt"),
        ("été.txt", "été.txt"),
    ],
)
def test_file_names_keep_their_last_component(name: str, expected: str) -> None:
    assert clean_filename(name) == expected
