"""A ledger of the batches a fault test sent, and the check that PostgreSQL holds exactly the
acknowledged ones: each once, whole, in order, with gapless seqs; nothing half-written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class Batch:
    conversation_id: str
    ids: list[str]
    acked: bool = False

    def body(self) -> dict[str, Any]:
        return {
            "messages": [
                {"id": message_id, "role": "user", "content": f"part {n} of a batch"}
                for n, message_id in enumerate(self.ids)
            ]
        }

    @property
    def url(self) -> str:
        return f"/v1/conversations/{self.conversation_id}/messages"


@dataclass
class Verdict:
    acknowledged: int = 0
    unacknowledged_stored_whole: int = 0
    unacknowledged_absent: int = 0
    messages_checked: int = 0


@dataclass
class Ledger:
    batches: list[Batch] = field(default_factory=list)

    def batch(self, conversation_id: str, size: int) -> Batch:
        new = Batch(conversation_id, [str(uuid.uuid4()) for _ in range(size)])
        self.batches.append(new)
        return new

    def check(self, db: psycopg.Connection, *, one_writer_per_conversation: bool = True) -> Verdict:
        verdict = Verdict()
        stored: dict[str, tuple[str, int]] = {}
        for conversation_id in {batch.conversation_id for batch in self.batches}:
            rows = db.execute(
                "SELECT id::text, seq FROM messages WHERE conversation_id = %s ORDER BY seq",
                [conversation_id],
            ).fetchall()
            counters = db.execute(
                "SELECT message_count, last_seq FROM conversations WHERE id = %s",
                [conversation_id],
            ).fetchone()
            seqs = [seq for _, seq in rows]
            assert seqs == list(range(1, len(rows) + 1)), f"gap in {conversation_id}"
            assert counters is None or counters == (len(rows), len(rows)), conversation_id
            assert len({message_id for message_id, _ in rows}) == len(rows), "duplicate id"
            stored.update((message_id, (conversation_id, seq)) for message_id, seq in rows)
            verdict.messages_checked += len(rows)
        last_acked_seq: dict[str, int] = {}
        for batch in self.batches:
            present = [message_id in stored for message_id in batch.ids]
            assert all(present) or not any(present), f"half-written batch {batch.ids[0]}"
            if batch.acked:
                assert all(present), f"acknowledged batch lost: {batch.ids[0]}"
                verdict.acknowledged += 1
                first = stored[batch.ids[0]][1]
                if one_writer_per_conversation:
                    # A writer's batches were acknowledged in order, so their seqs increase.
                    assert first > last_acked_seq.get(batch.conversation_id, 0)
                    last_acked_seq[batch.conversation_id] = first
            elif all(present):
                verdict.unacknowledged_stored_whole += 1
            else:
                verdict.unacknowledged_absent += 1
            if all(present):
                seqs = [stored[message_id][1] for message_id in batch.ids]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "batch not contiguous"
        return verdict
