"""Keyset cursors: opaque, round-trip exactly, and anything else is a 422 naming `cursor`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from service.core import cursor
from service.core.errors import InvalidInput


def test_a_cursor_stands_for_the_position_it_was_made_from() -> None:
    position = (datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC), uuid4())
    token = cursor.encode(*position)
    assert not set("=/+") & set(token)  # URL-safe, unpadded
    assert cursor.decode(token) == position


def test_no_cursor_means_the_start_of_the_listing() -> None:
    assert cursor.decode(None) == cursor.START
    assert cursor.decode(None, start=cursor.START_ASCENDING) == cursor.START_ASCENDING
    assert cursor.START > cursor.START_ASCENDING


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "' + str(UUID(int=1)).encode() + b'"]')
        .decode()
        .rstrip("="),  # a time without a zone
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_anything_else_is_refused_naming_the_cursor(token: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        cursor.decode(token)
    assert refused.value.field == "cursor"


def test_a_cursor_of_one_order_is_refused_by_another() -> None:
    position = (datetime(2026, 11, 26, tzinfo=UTC), uuid4())
    created = cursor.encode(*position, "created_at")
    assert cursor.decode(created, order="created_at") == position
    for other in ("updated_at", None):
        with pytest.raises(InvalidInput) as refused:
            cursor.decode(created, order=other)
        assert refused.value.field == "cursor"
    # Issued without an order (a listing with one order, or before orders existed): any takes it.
    untagged = cursor.encode(*position)
    assert cursor.decode(untagged, order="created_at") == position
    old = base64.urlsafe_b64encode(
        f'["{position[0].isoformat()}", "{position[1]}"]'.encode()
    ).decode()
    assert cursor.decode(old, order="updated_at") == position
