"""One suite, two backends: every test runs against chatkeep_client.testing.FakeChatkeep and
against a real server, so the fake answers as the service does (results and errors alike)."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends import Backend, contents, session_id, unique
from chatkeep_client import (
    Chatkeep,
    Conflict,
    Forbidden,
    InvalidInput,
    NewMessage,
    NotFound,
    PreconditionFailed,
    TooLarge,
    Unauthorized,
    ext,
)

# --- conversations -----------------------------------------------------------------------------


def test_create_then_read_by_id_and_by_external_id(ck: Chatkeep) -> None:
    external_id = unique("session-")
    created = ck.conversations.create(
        external_id=external_id, title="Trip", user_id=unique("u"), metadata={"lang": "fr"}
    )
    assert created.version >= 1
    assert created.message_count == 0
    for name in (created.id, str(created.id), ext(external_id)):
        read = ck.conversations.get(name)
        assert read == created


def test_creating_again_returns_the_stored_one_and_another_body_is_a_conflict(
    ck: Chatkeep,
) -> None:
    conversation_id = uuid.uuid4()
    first = ck.conversations.create(id=conversation_id, title="a")
    assert ck.conversations.create(id=conversation_id, title="a") == first
    with pytest.raises(Conflict) as raised:
        ck.conversations.create(id=conversation_id, title="b")
    assert (raised.value.status, raised.value.field) == (409, "id")
    external_id = unique()
    by_external = ck.conversations.create(external_id=external_id)
    assert ck.conversations.create(external_id=external_id) == by_external
    with pytest.raises(Conflict) as raised:
        ck.conversations.create(external_id=external_id, title="other")
    assert raised.value.field == "external_id"


def test_unknown_conversations_are_not_found_naming_the_field(ck: Chatkeep) -> None:
    for name in (uuid.uuid4(), ext(unique())):
        with pytest.raises(NotFound) as raised:
            ck.conversations.get(name)
        assert (raised.value.status, raised.value.field) == (404, "conversation_id")
        assert raised.value.title
        assert raised.value.detail


def test_external_ids_with_url_characters_round_trip(ck: Chatkeep) -> None:
    external_id = f"{unique()} ?#%&+é:@"
    ck.messages.append(ext(external_id), [{"role": "user", "content": "hi"}])
    assert ck.conversations.get(ext(external_id)).external_id == external_id
    assert contents(ck.messages.list(ext(external_id)).items) == ["hi"]
    with pytest.raises(ValueError, match="cannot be named"):
        ck.conversations.get(ext("a/b"))


def test_listing_pages_filters_sorts_and_counts(ck: Chatkeep) -> None:
    owner = unique("u")
    made = [
        ck.conversations.create(user_id=owner, metadata={"form": "f1" if n % 2 else "f2", "n": n})
        for n in range(5)
    ]
    # An update moves the first conversation to the top of the updated_at order only.
    ck.messages.append(made[0].id, [{"role": "user", "content": "bump"}])
    page = ck.conversations.list(user_id=owner, limit=2)
    assert len(page.items) == 2
    assert page.next_cursor is not None
    by_update = [c.id for c in ck.conversations.iter(user_id=owner, page_size=2)]
    assert by_update == [made[0].id] + [c.id for c in reversed(made[1:])]
    by_creation = [c.id for c in ck.conversations.iter(user_id=owner, sort="created_at")]
    assert by_creation == [c.id for c in reversed(made)]
    odd = [c.id for c in ck.conversations.iter(user_id=owner, metadata={"form": "f1"})]
    assert sorted(map(str, odd)) == sorted(str(made[n].id) for n in (1, 3))
    assert ck.conversations.count(user_id=owner) == 5
    assert ck.conversations.count(user_id=owner, metadata={"form": "f2"}) == 3
    with pytest.raises(InvalidInput) as raised:
        ck.conversations.list(
            user_id=owner,
            sort="updated_at",
            cursor=ck.conversations.list(user_id=owner, sort="created_at", limit=1).next_cursor,
        )
    assert raised.value.field == "cursor"
    with pytest.raises(InvalidInput) as raised:
        ck.conversations.list(limit=0)
    assert raised.value.field == "limit"


def test_update_replaces_and_patch_metadata_merges(ck: Chatkeep) -> None:
    created = ck.conversations.create(
        title="t", metadata={"state": {"status": "new", "fields": {"city": "Rome"}}, "keep": 1}
    )
    merged = ck.conversations.patch_metadata(
        created.id, {"state": {"status": "filling", "fields": {"zip": "00100", "city": None}}}
    )
    assert merged.metadata == {
        "state": {"status": "filling", "fields": {"zip": "00100"}},
        "keep": 1,
    }
    assert merged.version > created.version
    assert merged.title == "t"
    replaced = ck.conversations.update(created.id, metadata={"only": True}, title=None)
    assert (replaced.metadata, replaced.title) == ({"only": True}, None)
    assert ck.conversations.get(created.id) == replaced


def test_stale_versions_are_refused_and_current_ones_pass(ck: Chatkeep) -> None:
    created = ck.conversations.create()
    moved = ck.conversations.patch_metadata(created.id, {"a": 1}, if_match=created.version)
    assert (created.version, moved.version) == (1, 2)
    for write in (
        lambda: ck.conversations.patch_metadata(created.id, {"b": 2}, if_match=created.version),
        lambda: ck.conversations.update(created.id, title="x", if_match=created.version),
        lambda: ck.messages.append(
            created.id, [{"role": "user", "content": "x"}], if_match=created.version
        ),
        lambda: ck.conversations.delete(created.id, if_match=created.version),
    ):
        with pytest.raises(PreconditionFailed) as raised:
            write()
        assert (raised.value.status, raised.value.field) == (412, "If-Match")
    appended = ck.messages.append(
        created.id, [{"role": "user", "content": "ok"}], if_match=moved.version
    )
    assert appended.version > moved.version
    assert ck.conversations.get(created.id).version == appended.version
    ck.conversations.delete(created.id, if_match="*")
    with pytest.raises(NotFound):
        ck.conversations.get(created.id)
    with pytest.raises(PreconditionFailed):
        # A conditional append never creates the conversation.
        ck.messages.append(uuid.uuid4(), [{"role": "user", "content": "x"}], if_match="*")


def test_malformed_if_match_is_invalid_input(ck: Chatkeep) -> None:
    created = ck.conversations.create()
    with pytest.raises(InvalidInput) as raised:
        ck.conversations.update(created.id, title="x", if_match='W/"1"')
    assert raised.value.field == "If-Match"


def test_an_external_id_two_owners_use_is_ambiguous_for_a_key(backend: Backend) -> None:
    shared = ext(unique("shared-"))
    ann, ben = unique("ann-"), unique("ben-")
    for user_id in (ann, ben):
        backend.as_user(user_id).messages.append(shared, [{"role": "user", "content": user_id}])
    with pytest.raises(Conflict) as raised:
        backend.client.conversations.get(shared)
    assert raised.value.field == "conversation_id"
    # Naming the user in an append picks that user's.
    appended = backend.client.messages.append(
        shared, [{"role": "assistant", "content": "for ben"}], user_id=ben
    )
    assert contents(backend.as_user(ben).messages.list(shared).items) == [ben, "for ben"]
    assert appended.items[0].seq == 2


def test_delete_and_delete_many(ck: Chatkeep) -> None:
    owner = unique("u")
    for n in range(3):
        ck.messages.append(uuid.uuid4(), [{"role": "user", "content": f"{n}"}], user_id=owner)
    lone = ck.conversations.create(user_id=owner, metadata={"tag": unique()})
    ck.conversations.delete(lone.id)
    with pytest.raises(NotFound):
        ck.conversations.delete(lone.id)
    with pytest.raises(InvalidInput) as raised:
        ck.conversations.delete_many()
    assert raised.value.field == "confirm"
    with pytest.raises(InvalidInput) as raised:
        ck.conversations.delete_many(updated_before=datetime(2024, 1, 1))  # no offset
    assert raised.value.field == "updated_before"
    assert (
        ck.conversations.delete_many(
            user_id=owner, updated_before=datetime.now(UTC) - timedelta(days=1)
        ).conversations
        == 0
    )
    erased = ck.conversations.delete_many(user_id=owner)
    assert (erased.conversations, erased.messages, erased.files) == (3, 3, 0)
    assert ck.conversations.count(user_id=owner) == 0


# --- messages ----------------------------------------------------------------------------------


def test_append_assigns_seqs_and_ids_and_reads_back_in_pages(ck: Chatkeep) -> None:
    conversation_id = uuid.uuid4()
    appended = ck.messages.append(
        conversation_id,
        [
            {"role": "system", "content": "be brief"},
            NewMessage(role="user", content="hi", metadata={"k": [1, 2]}, topic="t1"),
            {"role": "assistant", "content": "hello", "external_id": "m-3"},
        ],
        user_id="alice-" + unique(),
    )
    assert [m.seq for m in appended.items] == [1, 2, 3]
    assert all(m.conversation_id == conversation_id for m in appended.items)
    assert appended.items[1].metadata == {"k": [1, 2]}
    assert appended.items[2].external_id == "m-3"
    ck.messages.append(conversation_id, [{"role": "user", "content": f"m{n}"} for n in range(4, 8)])
    latest = ck.messages.list(conversation_id, limit=3)
    assert contents(latest.items) == ["m5", "m6", "m7"]
    assert latest.next_cursor == 5
    older = ck.messages.list(conversation_id, limit=3, before=latest.next_cursor)
    assert [m.seq for m in older.items] == [2, 3, 4]
    newest_first = ck.messages.list(conversation_id, limit=2, order="desc")
    assert [m.seq for m in newest_first.items] == [7, 6]
    forward = ck.messages.list(conversation_id, after=5)
    assert ([m.seq for m in forward.items], forward.next_cursor) == ([6, 7], None)
    assert [m.seq for m in ck.messages.iter(conversation_id, page_size=3)] == list(range(1, 8))
    assert [m.seq for m in ck.messages.iter(conversation_id, page_size=2, newest_first=True)] == (
        list(range(7, 0, -1))
    )
    assert contents(ck.messages.list(conversation_id, topic="t1").items) == ["hi"]
    assert ck.conversations.get(conversation_id).message_count == 7


def test_appending_the_same_messages_again_stores_nothing(ck: Chatkeep) -> None:
    conversation_id = uuid.uuid4()
    message_id = uuid.uuid4()
    batch = [
        {"id": str(message_id), "role": "user", "content": "once"},
        {"role": "assistant", "content": "by external id", "external_id": "ext-1"},
    ]
    first = ck.messages.append(conversation_id, batch)
    again = ck.messages.append(conversation_id, batch)
    assert [m.id for m in again.items] == [m.id for m in first.items]
    assert again.version == first.version
    assert ck.conversations.get(conversation_id).message_count == 2
    with pytest.raises(Conflict) as raised:
        ck.messages.append(
            conversation_id, [{"id": str(message_id), "role": "user", "content": "x"}]
        )
    assert raised.value.field == "messages[0].id"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "User", "content": "x"}, "messages[0].role"),
        ({"role": "user"}, "messages[0].content"),
        ({"role": "user", "content": "nul \x00"}, "messages[0].content"),
        ({"role": "user", "content": "x", "colour": "red"}, "messages[0].colour"),
        ({"role": "user", "content": "x", "metadata": {"k": "\x00"}}, "messages[0].metadata.k"),
    ],
)
def test_bad_messages_are_invalid_input_naming_the_field(
    ck: Chatkeep, message: dict[str, object], field: str
) -> None:
    conversation_id = uuid.uuid4()
    with pytest.raises(InvalidInput) as raised:
        ck.messages.append(conversation_id, [message])
    assert (raised.value.status, raised.value.field) == (422, field)
    with pytest.raises(NotFound):
        # Nothing of a refused batch is stored, not even the conversation.
        ck.conversations.get(conversation_id)


def test_limits_and_empty_batches(ck: Chatkeep) -> None:
    with pytest.raises(InvalidInput) as invalid:
        ck.messages.append(uuid.uuid4(), [])
    assert invalid.value.field == "messages"
    with pytest.raises(TooLarge) as too_large:
        ck.messages.append(uuid.uuid4(), [{"role": "user", "content": "x"}] * 101)
    assert (too_large.value.status, too_large.value.field) == (413, "messages")


def test_a_turn_and_its_state_change_commit_together(ck: Chatkeep) -> None:
    conversation_id = uuid.uuid4()
    ck.messages.append(
        conversation_id,
        [{"role": "user", "content": "Paris"}],
        conversation_metadata={"fields": {"city": "Paris"}, "status": "filling"},
    )
    ck.messages.append(
        conversation_id,
        [{"role": "user", "content": "75001"}],
        conversation_metadata={"fields": {"zip": "75001"}, "status": None},
    )
    metadata = ck.conversations.get(conversation_id).metadata
    assert metadata == {"fields": {"city": "Paris", "zip": "75001"}}


def test_get_update_delete_and_clear_messages(ck: Chatkeep) -> None:
    conversation_id = uuid.uuid4()
    stored = ck.messages.append(
        conversation_id,
        [
            {"role": "user", "content": "a", "topic": "ch1"},
            {"role": "assistant", "content": "...", "topic": "ch1"},
            {"role": "user", "content": "c", "topic": "ch2"},
        ],
    ).items
    assert ck.messages.get(conversation_id, stored[1].id) == stored[1]
    final = ck.messages.update(
        conversation_id, stored[1].id, content="the reply", metadata={"x": 1}
    )
    assert (final.content, final.metadata, final.seq) == ("the reply", {"x": 1}, 2)
    ck.messages.delete(conversation_id, stored[0].id)
    with pytest.raises(NotFound) as raised:
        ck.messages.get(conversation_id, stored[0].id)
    assert raised.value.field == "message_id"
    assert ck.messages.clear(conversation_id, topic="ch1") == 1
    assert contents(ck.messages.list(conversation_id).items) == ["c"]
    assert ck.messages.clear(conversation_id) == 1
    assert ck.messages.list(conversation_id).items == []
    with pytest.raises(NotFound):
        ck.messages.clear(uuid.uuid4())


def test_appending_for_another_user_than_the_conversations_is_a_conflict(ck: Chatkeep) -> None:
    conversation_id = uuid.uuid4()
    ck.messages.append(conversation_id, [{"role": "user", "content": "x"}], user_id=unique("u"))
    with pytest.raises(Conflict) as raised:
        ck.messages.append(conversation_id, [{"role": "user", "content": "y"}], user_id=unique())
    assert raised.value.field == "user_id"


# --- files -------------------------------------------------------------------------------------


def test_upload_from_bytes_path_and_file_object_and_download(ck: Chatkeep, tmp_path: Path) -> None:
    conversation_id = ck.conversations.create().id
    data = bytes(range(256)) * 1000
    source = tmp_path / "report.bin"
    source.write_bytes(data)
    from_path = ck.files.upload(conversation_id, source, content_type="application/x-test")
    assert (from_path.filename, from_path.size, from_path.content_type) == (
        "report.bin",
        len(data),
        "application/x-test",
    )
    assert from_path.sha256 == hashlib.sha256(data).hexdigest()
    from_bytes = ck.files.upload(
        conversation_id,
        b"hello",
        filename="hello.txt",
        content_type="text/plain",
        metadata={"page": 3},
    )
    assert from_bytes.metadata == {"page": 3}
    from_object = ck.files.upload(conversation_id, io.BytesIO(b"object"), filename="o.txt")
    assert ck.files.read(conversation_id, from_object.id) == b"object"
    target = tmp_path / "copy.bin"
    assert ck.files.download(conversation_id, from_path.id, target) == len(data)
    assert target.read_bytes() == data
    sink = io.BytesIO()
    ck.files.download(conversation_id, from_bytes.id, sink)
    assert sink.getvalue() == b"hello"
    assert b"".join(ck.files.iter_content(conversation_id, from_path.id, chunk_size=1000)) == data
    assert ck.files.get(conversation_id, from_bytes.id) == from_bytes
    listed = [f.id for f in ck.files.iter(conversation_id, page_size=2)]
    assert listed == [from_path.id, from_bytes.id, from_object.id]
    ck.files.delete(conversation_id, from_bytes.id)
    with pytest.raises(NotFound) as raised:
        ck.files.get(conversation_id, from_bytes.id)
    assert raised.value.field == "file_id"


def test_an_upload_under_a_file_id_is_stored_once(ck: Chatkeep) -> None:
    conversation_id = ck.conversations.create().id
    file_id = uuid.uuid4()
    first = ck.files.upload(conversation_id, b"same", filename="a.txt", file_id=file_id)
    assert ck.files.upload(conversation_id, b"same", filename="a.txt", file_id=file_id) == first
    with pytest.raises(Conflict) as raised:
        ck.files.upload(conversation_id, b"other", filename="a.txt", file_id=file_id)
    assert raised.value.field == "file_id"
    assert len(ck.files.list(conversation_id).items) == 1


# --- prompts -----------------------------------------------------------------------------------


def test_prompts_are_versioned_listed_and_retired(ck: Chatkeep) -> None:
    prefix = unique("p")
    name = f"{prefix}.agent"
    first = ck.prompts.put(name, "You are helpful.")
    assert first.version == 1
    assert ck.prompts.put(name, "You are helpful.") == first
    second = ck.prompts.put(name, "You are brief.", metadata={"by": "ops"})
    assert (second.version, second.metadata) == (2, {"by": "ops"})
    assert ck.prompts.get(name) == second
    assert ck.prompts.get(name, version=1) == first
    assert [v.version for v in ck.prompts.iter_versions(name, page_size=1)] == [2, 1]
    ck.prompts.put(f"{prefix}.other", "x")
    page = ck.prompts.list(after=prefix, limit=2)
    assert [p.name for p in page.items] == [name, f"{prefix}.other"]
    assert page.items[0].latest_version == 2
    with pytest.raises(NotFound) as raised:
        ck.prompts.get(name, version=9)
    assert raised.value.field == "version"
    ck.prompts.retire(name)
    with pytest.raises(NotFound) as raised:
        ck.prompts.get(name)
    assert raised.value.field == "name"
    assert ck.prompts.put(name, "back").version == 3


# --- who may do what ---------------------------------------------------------------------------


def test_users_see_only_their_own(backend: Backend) -> None:
    alice_id, bob_id = unique("alice-"), unique("bob-")
    alice, bob = backend.as_user(alice_id), backend.as_user(bob_id)
    mine = alice.conversations.create(title="mine")
    assert mine.user_id == alice_id
    with pytest.raises(NotFound):
        bob.conversations.get(mine.id)
    with pytest.raises(NotFound):
        bob.messages.append(mine.id, [{"role": "user", "content": "intrusion"}])
    with pytest.raises(Forbidden) as raised:
        bob.conversations.create(user_id=alice_id)
    assert (raised.value.status, raised.value.field) == (403, "user_id")
    with pytest.raises(Forbidden):
        bob.conversations.list(user_id=alice_id)
    assert [c.id for c in alice.conversations.iter()] == [mine.id]
    with pytest.raises(Forbidden):
        alice.prompts.list()


def test_a_visitors_history_is_claimed_by_the_user_who_logs_in(backend: Backend) -> None:
    visitor_id = session_id()
    visitor = backend.as_visitor(visitor_id)
    chat = visitor.messages.append(ext("chat-1"), [{"role": "user", "content": "hi"}])
    user_id = unique("carol-")
    user = backend.as_user(user_id)
    with pytest.raises(NotFound):
        user.conversations.get(chat.items[0].conversation_id)
    assert user.users.claim(user_id, visitor_id) == 1
    assert user.users.claim(user_id, visitor_id) == 0
    assert contents(user.messages.list(ext("chat-1")).items) == ["hi"]
    with pytest.raises(NotFound):
        visitor.conversations.get(chat.items[0].conversation_id)
    with pytest.raises(InvalidInput) as raised:
        user.users.claim(user_id, "short")
    assert raised.value.field == "session_id"
    with pytest.raises(Forbidden):
        backend.as_user(unique()).users.claim(user_id, visitor_id)


def test_erasing_a_user(backend: Backend) -> None:
    user_id = unique("dave-")
    for _ in range(2):
        backend.client.messages.append(
            uuid.uuid4(), [{"role": "user", "content": "x"}] * 2, user_id=user_id
        )
    with pytest.raises(Forbidden):
        backend.as_user(unique()).users.erase(user_id)
    erased = backend.as_user(user_id).users.erase(user_id)
    assert (erased.conversations, erased.messages) == (2, 4)
    assert backend.client.conversations.count(user_id=user_id) == 0


def test_no_credentials_is_unauthorized(backend: Backend) -> None:
    with pytest.raises(Unauthorized) as raised:
        backend.anonymous().conversations.list()
    assert raised.value.status == 401


def test_accounts_log_in_for_a_user_token(backend: Backend) -> None:
    username = unique("erin-")
    backend.add_account(username, "correct horse battery")
    token = backend.client.auth.token(username, "correct horse battery")
    assert (token.user_id, token.token_type) == (username, "Bearer")
    assert token.expires_in > 0
    as_user = backend.client.with_credentials(token=token.access_token)
    assert as_user.conversations.create().user_id == username
    with pytest.raises(Unauthorized) as raised:
        backend.client.auth.token(username, "wrong password")
    assert raised.value.field == "password"
