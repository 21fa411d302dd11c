"""What the fake stores, and the service's rules for changing it (service/history/), kept in
memory. client/tests/test_contract.py runs the same tests against this and a real server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from msgspec import UNSET

from chatkeep_client import models
from chatkeep_client.testing import _inputs as inputs
from chatkeep_client.testing._problems import Problem, conversation_not_found, invalid, not_found
from chatkeep_client.testing._records import (
    Account,
    Caller,
    StoredConversation,
    StoredFile,
    StoredMessage,
    StoredPrompt,
    conversation_view,
    file_view,
    message_view,
)
from chatkeep_client.testing._rules import (
    MAX_BATCH,
    MAX_FILE_BYTES,
    MAX_METADATA_BYTES,
    MAX_SEQ,
    PROMPT_NAME,
    SESSION_ID,
    SORTS,
    check_content,
    check_metadata,
    contains,
    decode_cursor,
    display_name,
    encode_cursor,
    instant,
    merge_patch,
    metadata_filter,
    page_size,
    reject_nul,
    visitor_key,
)


class State:
    """Everything the fake holds: conversations (with their messages and files), prompts and
    accounts. One instance per FakeServer; no locks (the fake serves one test)."""

    def __init__(self) -> None:
        self.conversations: dict[UUID, StoredConversation] = {}
        self.prompts: dict[str, StoredPrompt] = {}
        self.accounts: dict[str, Account] = {}
        self._last_instant = datetime.now(UTC)

    def now(self) -> datetime:
        """Strictly increasing, so orders by time are total, as with real clocks they are not
        guaranteed to be (the service breaks ties by id)."""
        self._last_instant = max(datetime.now(UTC), self._last_instant + timedelta(microseconds=1))
        return self._last_instant

    # --- finding a conversation ----------------------------------------------------------

    def find(
        self, ref: UUID | str, caller: Caller, *, user_id: str | None = None
    ) -> StoredConversation | None:
        if isinstance(ref, UUID):
            found = self.conversations.get(ref)
            return found if found is not None and caller.sees(found) else None
        matches = [
            conversation
            for conversation in self.conversations.values()
            if conversation.external_id == ref
            and caller.sees(conversation)
            and (user_id is None or conversation.user_id == user_id)
        ]
        if len(matches) > 1:
            raise Problem(
                409,
                f"several conversations have the external id {ref!r}; name it by its id"
                + (" or pass user_id" if user_id is None else ""),
                field="conversation_id",
            )
        return matches[0] if matches else None

    def resolve(self, ref: UUID | str, caller: Caller) -> StoredConversation:
        found = self.find(ref, caller)
        if found is None:
            raise conversation_not_found(display_name(ref))
        return found

    def _external_id_taken(
        self, external_id: str | None, owner: tuple[str | None, str | None]
    ) -> StoredConversation | None:
        if external_id is None:
            return None
        return next(
            (
                conversation
                for conversation in self.conversations.values()
                if conversation.external_id == external_id and conversation.owner == owner
            ),
            None,
        )

    def _insert(
        self,
        conversation_id: UUID,
        owner: tuple[str | None, str | None],
        *,
        external_id: str | None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StoredConversation | None:
        if conversation_id in self.conversations or self._external_id_taken(external_id, owner):
            return None
        at = self.now()
        created = StoredConversation(
            id=conversation_id,
            title=title,
            user_id=owner[0],
            visitor=owner[1],
            metadata=metadata or {},
            created_at=at,
            updated_at=at,
            external_id=external_id,
        )
        self.conversations[conversation_id] = created
        return created

    def _touch(self, conversation: StoredConversation) -> None:
        conversation.version += 1
        conversation.updated_at = self.now()

    # --- conversations ---------------------------------------------------------------------

    def create(
        self, caller: Caller, body: inputs.ConversationCreate
    ) -> tuple[models.Conversation, bool]:
        reject_nul(body.title, "title")
        reject_nul(body.user_id, "user_id")
        reject_nul(body.external_id, "external_id")
        check_metadata(body.metadata, "metadata")
        owner = caller.new_owner(body.user_id)
        created = self._insert(
            body.id or uuid.uuid4(),
            owner,
            external_id=body.external_id,
            title=body.title,
            metadata=body.metadata,
        )
        if created is not None:
            return conversation_view(created), True
        existing = (
            self.find(body.id, caller)
            if body.id is not None
            else self._external_id_taken(body.external_id, owner)
        )
        if existing is None and body.id is not None and body.external_id is not None:
            raise Problem(
                409, f"external id {body.external_id!r} is already used", field="external_id"
            )
        if existing is None or (
            existing.title,
            existing.user_id,
            existing.external_id,
            existing.metadata,
        ) != (body.title, owner[0], body.external_id, body.metadata):
            name = "id" if body.id is not None else "external_id"
            raise Problem(
                409, f"conversation {name} is already taken by another conversation", field=name
            )
        return conversation_view(existing), False

    def get(self, caller: Caller, ref: UUID | str) -> models.Conversation:
        return conversation_view(self.resolve(ref, caller))

    def _require_version(
        self, conversation: StoredConversation, versions: frozenset[int] | str | None, ref: object
    ) -> None:
        if isinstance(versions, frozenset) and conversation.version not in versions:
            raise Problem(
                412,
                f"conversation {display_name(ref)} has changed: it is at version "
                f"{conversation.version}",
                field="If-Match",
            )

    def _apply_patch(
        self,
        conversation: StoredConversation,
        patch: inputs.ConversationPatch,
        *,
        merge: bool,
        prefix: str = "",
    ) -> None:
        if patch.title is not UNSET:
            conversation.title = patch.title if isinstance(patch.title, str) else None
        if isinstance(patch.metadata, dict):
            metadata = (
                merge_patch(conversation.metadata, patch.metadata) if merge else patch.metadata
            )
            size = len(msgspec.json.encode(metadata))
            if merge and size > MAX_METADATA_BYTES:
                raise Problem(
                    413,
                    f"the merged metadata would be {size} bytes; the limit is {MAX_METADATA_BYTES}",
                    field=f"{prefix}metadata",
                )
            conversation.metadata = metadata

    def _check_patch(self, patch: inputs.ConversationPatch, prefix: str = "") -> None:
        if isinstance(patch.title, str):
            reject_nul(patch.title, f"{prefix}title")
        if isinstance(patch.metadata, dict):
            check_metadata(patch.metadata, f"{prefix}metadata")

    def update(
        self,
        caller: Caller,
        ref: UUID | str,
        patch: inputs.ConversationPatch,
        *,
        merge: bool,
        versions: frozenset[int] | str | None,
    ) -> models.Conversation:
        self._check_patch(patch)
        conversation = self.resolve(ref, caller)
        self._require_version(conversation, versions, ref)
        self._apply_patch(conversation, patch, merge=merge)
        self._touch(conversation)
        return conversation_view(conversation)

    def delete(
        self, caller: Caller, ref: UUID | str, versions: frozenset[int] | str | None
    ) -> None:
        conversation = self.resolve(ref, caller)
        self._require_version(conversation, versions, ref)
        del self.conversations[conversation.id]

    def _listed(
        self, caller: Caller, user_id: str | None, metadata: str | None
    ) -> list[StoredConversation]:
        reject_nul(user_id, "user_id")
        wanted = metadata_filter(metadata)
        if caller.trusted:

            def belongs(c: StoredConversation) -> bool:
                return user_id is None or c.user_id == user_id
        elif caller.kind == "user" and user_id in (None, caller.user_id):

            def belongs(c: StoredConversation) -> bool:
                return c.user_id == caller.user_id
        elif caller.kind == "visitor" and user_id is None:

            def belongs(c: StoredConversation) -> bool:
                return c.visitor is not None and c.visitor == caller.visitor
        else:
            raise Problem(403, "only your own conversations can be listed", field="user_id")
        return [
            conversation
            for conversation in self.conversations.values()
            if belongs(conversation) and (wanted is None or contains(conversation.metadata, wanted))
        ]

    def list_page(
        self,
        caller: Caller,
        *,
        user_id: str | None,
        metadata: str | None,
        sort: str,
        limit: int | None,
        cursor: str | None,
    ) -> models.ConversationPage:
        size = page_size(limit)
        if sort not in SORTS:
            raise invalid(f"sort must be one of {', '.join(SORTS)}", "sort")
        listed = self._listed(caller, user_id, metadata)
        after = decode_cursor(cursor, sort)

        def key(c: StoredConversation) -> tuple[datetime, str]:
            return (c.updated_at if sort == "updated_at" else c.created_at), str(c.id)

        rows = sorted(listed, key=key, reverse=True)
        if after is not None:
            rows = [c for c in rows if key(c) < after]
        items = rows[:size]
        next_cursor = None
        if len(rows) > size:
            last_at, last_id = key(items[-1])
            next_cursor = encode_cursor(last_at, last_id, sort)
        return models.ConversationPage(
            items=[conversation_view(c) for c in items], next_cursor=next_cursor
        )

    def count(self, caller: Caller, *, user_id: str | None, metadata: str | None) -> int:
        return len(self._listed(caller, user_id, metadata))

    def erase_matching(
        self,
        caller: Caller,
        *,
        user_id: str | None,
        metadata: str | None,
        updated_before: str | None,
        confirm: str | None,
    ) -> models.ConversationsErased:
        if not caller.trusted:
            raise Problem(
                403,
                "deleting conversations in bulk needs an API key with the erase permission",
                field="Authorization",
            )
        reject_nul(user_id, "user_id")
        wanted = metadata_filter(metadata)
        before = instant(updated_before, "updated_before")
        if confirm not in (None, "all"):
            raise invalid("confirm must be 'all'", "confirm")
        if user_id is None and wanted is None and before is None and confirm != "all":
            raise invalid(
                "without a filter (user_id, metadata, updated_before) this deletes every "
                "conversation: pass confirm=all to mean it",
                "confirm",
            )
        gone = [
            c
            for c in self.conversations.values()
            if (user_id is None or c.user_id == user_id)
            and (wanted is None or contains(c.metadata, wanted))
            and (before is None or c.updated_at < before)
        ]
        for conversation in gone:
            del self.conversations[conversation.id]
        return models.ConversationsErased(
            conversations=len(gone),
            messages=sum(len(c.messages) for c in gone),
            files=sum(len(c.files) for c in gone),
        )

    # --- messages ----------------------------------------------------------------------------

    def _check_batch(self, batch: inputs.MessageBatch) -> None:
        if len(batch.messages) > MAX_BATCH:
            raise Problem(
                413,
                f"{len(batch.messages)} messages in one batch; the limit is {MAX_BATCH}",
                field="messages",
            )
        reject_nul(batch.user_id, "user_id")
        if isinstance(batch.conversation, inputs.ConversationPatch):
            self._check_patch(batch.conversation, "conversation.")
        seen: set[tuple[str, object]] = set()
        for index, message in enumerate(batch.messages):
            where = f"messages[{index}]"
            check_content(message.content, f"{where}.content")
            reject_nul(message.topic, f"{where}.topic")
            reject_nul(message.external_id, f"{where}.external_id")
            check_metadata(message.metadata, f"{where}.metadata")
            for name, value in (("id", message.id), ("external_id", message.external_id)):
                if value is not None:
                    if (name, value) in seen:
                        raise invalid(
                            f"the same {name} appears twice in one batch", f"{where}.{name}"
                        )
                    seen.add((name, value))

    def _for_write(
        self,
        caller: Caller,
        ref: UUID | str,
        user_id: str | None,
        versions: frozenset[int] | str | None,
    ) -> StoredConversation:
        """The conversation an append (or upload) writes to, created when it does not exist."""
        conversation = self.find(ref, caller, user_id=user_id)
        if conversation is None:
            if versions != "absent":
                raise Problem(
                    412, f"conversation {display_name(ref)} does not exist", field="If-Match"
                )
            owner = caller.new_owner(user_id)
            conversation = self._insert(
                ref if isinstance(ref, UUID) else uuid.uuid4(),
                owner,
                external_id=None if isinstance(ref, UUID) else ref,
            )
            if conversation is None:
                raise conversation_not_found(display_name(ref))
        if user_id is not None and user_id != conversation.user_id:
            raise Problem(
                409,
                f"conversation {display_name(ref)} does not belong to user {user_id!r}",
                field="user_id",
            )
        self._require_version(conversation, versions, ref)
        return conversation

    def append(
        self,
        caller: Caller,
        ref: UUID | str,
        batch: inputs.MessageBatch,
        versions: frozenset[int] | str | None,
    ) -> tuple[list[models.Message], int]:
        self._check_batch(batch)
        conversation = self._for_write(caller, ref, batch.user_id, versions)
        by_external_id = {m.external_id: m for m in conversation.messages.values() if m.external_id}
        result: list[StoredMessage] = []
        new: list[StoredMessage] = []
        for index, message in enumerate(batch.messages):
            where = f"messages[{index}]"
            previous = conversation.messages.get(message.id) if message.id is not None else None
            name = f"{where}.id"
            if previous is None and message.external_id is not None:
                previous = by_external_id.get(message.external_id)
                name = f"{where}.external_id"
                if previous is not None and message.id is not None:
                    raise Problem(
                        409,
                        f"external id {message.external_id!r} is used by message {previous.id}",
                        field=name,
                    )
            if previous is None:
                stored = StoredMessage(
                    id=message.id or uuid.uuid4(),
                    seq=conversation.last_seq + len(new) + 1,
                    role=message.role,
                    content=message.content,
                    topic=message.topic,
                    metadata=message.metadata,
                    created_at=self.now(),
                    external_id=message.external_id,
                )
                new.append(stored)
                result.append(stored)
            elif not previous.same_as(message):
                raise Problem(
                    409,
                    f"message {previous.id} is already stored with a different body",
                    field=name,
                )
            else:
                result.append(previous)
        if new:
            if isinstance(batch.conversation, inputs.ConversationPatch):
                self._apply_patch(
                    conversation, batch.conversation, merge=True, prefix="conversation."
                )
            for stored in new:
                conversation.messages[stored.id] = stored
            conversation.last_seq += len(new)
            self._touch(conversation)
        return [message_view(conversation, m) for m in result], conversation.version

    def page(
        self,
        caller: Caller,
        ref: UUID | str,
        *,
        limit: int | None,
        before: int | None,
        after: int | None,
        order: str,
        topic: str | None,
    ) -> models.MessagePage:
        size = page_size(limit)
        for name, value in (("before", before), ("after", after)):
            if value is not None and not 0 <= value <= MAX_SEQ:
                raise invalid(f"{name} must be a seq between 0 and {MAX_SEQ}", name)
        if order not in ("asc", "desc"):
            raise invalid("order must be asc or desc", "order")
        reject_nul(topic, "topic")
        conversation = self.resolve(ref, caller)
        forward = after is not None
        low = 0 if after is None else after
        high = MAX_SEQ if before is None else before
        rows = sorted(
            (
                m
                for m in conversation.messages.values()
                if low < m.seq < high and (topic is None or m.topic == topic)
            ),
            key=lambda m: m.seq,
            reverse=not forward,
        )
        items = rows[:size]
        next_cursor = items[-1].seq if len(rows) > size else None
        if forward != (order == "asc"):
            items.reverse()
        return models.MessagePage(
            items=[message_view(conversation, m) for m in items], next_cursor=next_cursor
        )

    def _message(self, conversation: StoredConversation, message_id: UUID) -> StoredMessage:
        found = conversation.messages.get(message_id)
        if found is None:
            raise not_found("message", message_id, "message_id")
        return found

    def get_message(self, caller: Caller, ref: UUID | str, message_id: UUID) -> models.Message:
        conversation = self.resolve(ref, caller)
        return message_view(conversation, self._message(conversation, message_id))

    def update_message(
        self, caller: Caller, ref: UUID | str, message_id: UUID, patch: inputs.MessagePatch
    ) -> models.Message:
        if isinstance(patch.content, str):
            check_content(patch.content, "content")
        if isinstance(patch.metadata, dict):
            check_metadata(patch.metadata, "metadata")
        conversation = self.resolve(ref, caller)
        message = self._message(conversation, message_id)
        if isinstance(patch.content, str):
            message.content = patch.content
        if isinstance(patch.metadata, dict):
            message.metadata = patch.metadata
        self._touch(conversation)
        return message_view(conversation, message)

    def delete_message(self, caller: Caller, ref: UUID | str, message_id: UUID) -> None:
        conversation = self.resolve(ref, caller)
        self._message(conversation, message_id)
        del conversation.messages[message_id]
        self._touch(conversation)

    def clear(self, caller: Caller, ref: UUID | str, topic: str | None) -> int:
        reject_nul(topic, "topic")
        conversation = self.resolve(ref, caller)
        gone = [m.id for m in conversation.messages.values() if topic is None or m.topic == topic]
        for message_id in gone:
            del conversation.messages[message_id]
        if gone:
            self._touch(conversation)
        return len(gone)

    # --- files -------------------------------------------------------------------------------

    def upload(
        self,
        caller: Caller,
        ref: UUID | str,
        *,
        file_id: UUID | None,
        filename: str,
        content_type: str,
        data: bytes,
        metadata: dict[str, Any],
        user_id: str | None,
    ) -> tuple[models.FileInfo, bool]:
        check_metadata(metadata, "metadata")
        if len(data) > MAX_FILE_BYTES:
            raise Problem(
                413, f"the file is over the limit of {MAX_FILE_BYTES} bytes", field="file"
            )
        conversation = self._for_write(caller, ref, user_id, "absent")
        if file_id is not None:
            for other in self.conversations.values():
                stored = other.files.get(file_id)
                if stored is None:
                    continue
                if other is conversation and stored.data == data:
                    return file_view(conversation, stored), False
                raise Problem(409, f"file id {file_id} is already taken", field="file_id")
        stored = StoredFile(
            id=file_id or uuid.uuid4(),
            filename=filename,
            content_type=content_type,
            data=data,
            created_at=self.now(),
            metadata=metadata,
        )
        conversation.files[stored.id] = stored
        return file_view(conversation, stored), True

    def file(
        self, caller: Caller, ref: UUID | str, file_id: UUID
    ) -> tuple[StoredConversation, StoredFile]:
        conversation = self.resolve(ref, caller)
        found = conversation.files.get(file_id)
        if found is None:
            raise not_found("file", file_id, "file_id")
        return conversation, found

    def files_page(
        self, caller: Caller, ref: UUID | str, *, limit: int | None, cursor: str | None
    ) -> models.FilePage:
        size = page_size(limit)
        conversation = self.resolve(ref, caller)
        after = decode_cursor(cursor, "files")
        rows = sorted(conversation.files.values(), key=lambda f: (f.created_at, str(f.id)))
        if after is not None:
            rows = [f for f in rows if (f.created_at, str(f.id)) > after]
        items = rows[:size]
        next_cursor = (
            encode_cursor(items[-1].created_at, items[-1].id, "files") if len(rows) > size else None
        )
        return models.FilePage(
            items=[file_view(conversation, f) for f in items], next_cursor=next_cursor
        )

    def set_file_metadata(
        self, caller: Caller, ref: UUID | str, file_id: UUID, metadata: dict[str, Any]
    ) -> models.FileInfo:
        check_metadata(metadata, "metadata")
        conversation, stored = self.file(caller, ref, file_id)
        stored.metadata = metadata
        return file_view(conversation, stored)

    def delete_file(self, caller: Caller, ref: UUID | str, file_id: UUID) -> None:
        conversation, stored = self.file(caller, ref, file_id)
        del conversation.files[stored.id]

    # --- prompts -----------------------------------------------------------------------------

    def _prompt(self, caller: Caller, name: str) -> StoredPrompt | None:
        if not caller.trusted:
            raise Problem(403, "prompts are managed with an API key", field="Authorization")
        if not PROMPT_NAME.fullmatch(name):
            raise invalid("a prompt name is letters, digits, '.', '_' and '-'", "name")
        found = self.prompts.get(name)
        return None if found is None or found.retired or not found.versions else found

    def put_prompt(
        self, caller: Caller, name: str, body: inputs.PromptPut
    ) -> tuple[models.PromptVersion, bool]:
        current = self._prompt(caller, name)
        check_content(body.content, "content")
        check_metadata(body.metadata, "metadata")
        if current is not None:
            latest = current.versions[-1]
            if (latest.content, latest.metadata) == (body.content, body.metadata):
                return latest, False
        prompt = self.prompts.setdefault(name, StoredPrompt())
        at = self.now()
        version = models.PromptVersion(
            name=name,
            version=len(prompt.versions) + 1,
            content=body.content,
            metadata=body.metadata,
            created_at=at,
        )
        if prompt.created_at is None or prompt.retired:
            prompt.created_at = at
        prompt.versions.append(version)
        prompt.retired = False
        prompt.updated_at = at
        return version, True

    def get_prompt(self, caller: Caller, name: str, version: int | None) -> models.PromptVersion:
        prompt = self._prompt(caller, name)
        if prompt is None:
            raise not_found("prompt", repr(name), "name")
        if version is None:
            return prompt.versions[-1]
        if not 1 <= version <= len(prompt.versions):
            raise Problem(
                404, f"version {version} of prompt {name!r} does not exist", field="version"
            )
        return prompt.versions[version - 1]

    def prompt_versions(
        self, caller: Caller, name: str, *, limit: int | None, before: int | None
    ) -> models.PromptVersionPage:
        size = page_size(limit)
        prompt = self._prompt(caller, name)
        if prompt is None:
            raise not_found("prompt", repr(name), "name")
        rows = [v for v in reversed(prompt.versions) if before is None or v.version < before]
        items = rows[:size]
        return models.PromptVersionPage(
            items=items, next_cursor=items[-1].version if len(rows) > size else None
        )

    def prompts_page(
        self, caller: Caller, *, limit: int | None, after: str | None
    ) -> models.PromptPage:
        if not caller.trusted:
            raise Problem(403, "prompts are managed with an API key", field="Authorization")
        size = page_size(limit)
        rows = [
            models.PromptSummary(
                name=name,
                latest_version=prompt.versions[-1].version,
                created_at=prompt.created_at or prompt.versions[0].created_at,
                updated_at=prompt.updated_at or prompt.versions[-1].created_at,
            )
            for name, prompt in sorted(self.prompts.items())
            if not prompt.retired and prompt.versions and name > (after or "")
        ]
        items = rows[:size]
        return models.PromptPage(
            items=items, next_cursor=items[-1].name if len(rows) > size else None
        )

    def retire_prompt(self, caller: Caller, name: str) -> None:
        prompt = self._prompt(caller, name)
        if prompt is None:
            raise not_found("prompt", repr(name), "name")
        prompt.retired = True

    # --- users and accounts ------------------------------------------------------------------

    def _require_manage(self, caller: Caller, user_id: str, permission: str) -> None:
        reject_nul(user_id, "user_id")
        if not caller.may_manage(user_id):
            raise Problem(
                403,
                f"only that user's own token or an API key with the {permission} permission may"
                " do this",
                field="user_id",
            )

    def claim(self, caller: Caller, user_id: str, session_id: str) -> int:
        self._require_manage(caller, user_id, "write")
        if not SESSION_ID.fullmatch(session_id):
            raise invalid(
                "session_id must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ : -", "session_id"
            )
        visitor = visitor_key(session_id)
        moving = [c for c in self.conversations.values() if c.visitor == visitor]
        taken = {c.external_id for c in self.conversations.values() if c.user_id == user_id}
        clashing = sorted(
            c.external_id for c in moving if c.external_id is not None and c.external_id in taken
        )
        if clashing:
            raise Problem(
                409,
                f"user {user_id!r} already has conversations with the external ids "
                f"{', '.join(map(repr, clashing))}; rename or delete one side, then claim again",
                field="session_id",
            )
        for conversation in moving:
            conversation.user_id, conversation.visitor = user_id, None
        return len(moving)

    def erase_user(self, caller: Caller, user_id: str) -> models.Erased:
        self._require_manage(caller, user_id, "erase")
        gone = [c for c in self.conversations.values() if c.user_id == user_id]
        for conversation in gone:
            del self.conversations[conversation.id]
        return models.Erased(conversations=len(gone), messages=sum(len(c.messages) for c in gone))

    def log_in(self, username: str, password: str) -> str:
        account = self.accounts.get(username)
        if account is None or account.password != password:
            raise Problem(
                401,
                "the username or password is wrong, or the account is disabled",
                field="password",
                headers={"WWW-Authenticate": 'Bearer realm="chatkeep"'},
            )
        return account.user_id
