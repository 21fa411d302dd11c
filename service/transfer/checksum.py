"""The per-conversation checksum the import verification compares between source and database.

It must equal the ``checksums`` query of sql/transfer.sql: MD5 over (id, seq, role, content,
topic) of each message in seq order, fields joined by U+001F, messages by U+001E, content
prefixed with its length in characters so no content can imitate a separator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from service.store.transfer import MessageRow


def checksum(messages: Iterable[MessageRow]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for n, message in enumerate(sorted(messages, key=lambda m: m.seq)):
        if n:
            digest.update(b"\x1e")
        fields = (
            str(message.id),
            str(message.seq),
            message.role,
            f"{len(message.content)}:{message.content}",
            message.topic or "",
        )
        digest.update("\x1f".join(fields).encode())
    return digest.hexdigest()
