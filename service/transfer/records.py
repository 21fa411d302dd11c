"""One conversation with all its messages, as the loader writes it (the rows themselves:
service/store/transfer.py)."""

from __future__ import annotations

import msgspec

from service.store.transfer import ConversationRow, MessageRow


class Conversation(msgspec.Struct):
    """A conversation read from a source, ready to load; ``location`` says where it came from
    (a file, a table row) for reports."""

    row: ConversationRow
    messages: list[MessageRow]
    location: str
