"""The import checksum: it must equal what sql/transfer.sql computes (the integration tests
compare the two on real data); here, its own properties."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from service.store.transfer import MessageRow
from service.transfer.checksum import checksum

CONVERSATION = UUID(int=1)


def row(seq: int, content: str, topic: str | None = None) -> MessageRow:
    return MessageRow(
        conversation_id=CONVERSATION,
        seq=seq,
        id=UUID(int=100 + seq),
        role="user",
        content=content,
        topic=topic,
        metadata=msgspec.Raw(b"{}"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_no_messages_is_the_md5_of_nothing() -> None:
    assert checksum([]) == hashlib.md5(b"", usedforsecurity=False).hexdigest()


def test_one_message_in_the_documented_form() -> None:
    expected = "\x1f".join([str(UUID(int=101)), "1", "user", "2:hi", "t"])
    digest = hashlib.md5(expected.encode(), usedforsecurity=False).hexdigest()
    assert checksum([row(1, "hi", "t")]) == digest


def test_messages_count_in_seq_order_whatever_the_input_order() -> None:
    first, second = row(1, "a"), row(2, "b")
    assert checksum([second, first]) == checksum([first, second])


def test_content_cannot_imitate_a_separator() -> None:
    # Without the length prefix these two histories would hash the same bytes.
    joined = [row(1, "a\x1f2\x1fuser\x1fb")]
    split = [row(1, "a"), row(2, "b")]
    assert checksum(joined) != checksum(split)


def test_any_change_to_a_checked_field_changes_the_checksum() -> None:
    base = checksum([row(1, "hello")])
    assert checksum([row(1, "hellO")]) != base
    assert checksum([row(1, "hello", "topic")]) != base
    assert checksum([row(2, "hello")]) != base
