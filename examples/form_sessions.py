"""A forms assistant's session store: each chat fills a form, and the form's state (status,
the fields collected so far, progress) lives in the conversation's metadata, changed in the
same transaction as the turn that changed it.

Concurrent turns on one session cannot lose an update: each write carries the version it was
computed from (``if_match``); a stale one is refused (412) and is computed again from the
state as it now is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chatkeep_client import Chatkeep, Conversation, PreconditionFailed, ext

ATTEMPTS = 10


@dataclass(frozen=True)
class FormState:
    session_id: str
    status: str  # "started", "filling", "complete" or "abandoned"
    fields: dict[str, Any]
    progress: float  # the share of required fields collected
    version: int

    @classmethod
    def of(cls, conversation: Conversation) -> FormState:
        state = conversation.metadata
        return cls(
            conversation.external_id or str(conversation.id),
            state["status"],
            state["fields"],
            state["progress"],
            conversation.version,
        )


class FormSessions:
    def __init__(self, chatkeep: Chatkeep, form_id: str, required: Sequence[str]) -> None:
        self.chatkeep, self.form_id, self.required = chatkeep, form_id, list(required)

    def start(self, session_id: str, user_id: str | None = None) -> FormState:
        state = {"form_id": self.form_id, "status": "started", "fields": {}, "progress": 0.0}
        created = self.chatkeep.conversations.create(
            external_id=session_id, user_id=user_id, metadata=state
        )
        return FormState.of(created)

    def load(self, session_id: str) -> FormState:
        return FormState.of(self.chatkeep.conversations.get(ext(session_id)))

    def record_turn(
        self, session_id: str, user_text: str, reply: str, collected: dict[str, Any]
    ) -> FormState:
        """Store the user's message and the assistant's reply, with the fields the turn
        collected merged into the form's state."""
        turn = [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]

        def write(state: FormState) -> FormState:
            fields = {**state.fields, **collected}
            done = sum(name in fields for name in self.required) / len(self.required)
            status = "complete" if done == 1 else "filling"
            appended = self.chatkeep.messages.append(
                ext(session_id),
                turn,
                # A merge patch: the fields named are set, the others stay.
                conversation_metadata={"fields": collected, "progress": done, "status": status},
                if_match=state.version,
            )
            return FormState(session_id, status, fields, done, appended.version)

        return self._retrying(session_id, write)

    def set_status(self, session_id: str, status: str) -> FormState:
        def write(state: FormState) -> FormState:
            changed = self.chatkeep.conversations.patch_metadata(
                ext(session_id), {"status": status}, if_match=state.version
            )
            return FormState.of(changed)

        return self._retrying(session_id, write)

    def sessions(self, status: str | None = None) -> Iterator[FormState]:
        """The form's sessions, most recently active first (one status's only, with it)."""
        for conversation in self.chatkeep.conversations.iter(metadata=self._filter(status)):
            yield FormState.of(conversation)

    def count(self, status: str | None = None) -> int:
        return self.chatkeep.conversations.count(metadata=self._filter(status))

    def _filter(self, status: str | None) -> dict[str, str]:
        return {"form_id": self.form_id} | ({} if status is None else {"status": status})

    def _retrying(self, session_id: str, write: Callable[[FormState], FormState]) -> FormState:
        """``write`` computed from the current state, again after each conflicting write."""
        for _ in range(ATTEMPTS - 1):
            try:
                return write(self.load(session_id))
            except PreconditionFailed:
                continue
        return write(self.load(session_id))
