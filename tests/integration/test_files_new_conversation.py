"""Files before the first message: an upload to a conversation that does not exist yet creates
it, as an append does (owner, quota, concurrency); files carry a JSON metadata object, sent with
the upload and replaced by PATCH."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from service.core.settings import Settings
from tests.helpers import JWT_SECRET, assert_problem, bearer, messages_body, user_token
from tests.integration.conftest import Client, make_settings

ALICE = bearer(user_token("alice"))
VISITOR = {"X-Session-ID": "visitor-files-0123456789"}
WAITING_FOR_CONTENT = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        pool_max_size="20",
        jwt_secret=JWT_SECRET,
        allow_anonymous="true",
        visitor_max_conversations="2",
        max_metadata_bytes="200",
    )


def files_url(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/files"


async def upload(
    client: Client | httpx.AsyncClient,
    conversation_id: str,
    content: bytes = b"form",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Any:
    """A multipart upload with the given text fields besides the file."""
    return await client.post(
        files_url(conversation_id),
        files={"file": ("filled.pdf", content, "application/pdf")},
        data=fields,
        headers=headers or {},
    )


def owner(db: psycopg.Connection, conversation_id: str) -> tuple[Any, ...] | None:
    return db.execute(
        "SELECT user_id, visitor_hash IS NOT NULL FROM conversations WHERE id = %s",
        (conversation_id,),
    ).fetchone()


@pytest.mark.parametrize(
    ("headers", "fields", "expected"),
    [
        (ALICE, {}, ("alice", False)),
        (VISITOR, {}, (None, True)),
        (None, {"user_id": "bob"}, ("bob", False)),
        (None, {}, (None, False)),
    ],
    ids=["user token", "visitor", "key with user_id", "key"],
)
async def test_an_upload_creates_the_conversation_owned_by_the_uploader(  # noqa: PLR0917
    anonymous_client: Client,
    api_key: str,
    db: psycopg.Connection,
    headers: dict[str, str] | None,
    fields: dict[str, str],
    expected: tuple[Any, ...],
) -> None:
    headers = headers or bearer(api_key)
    conversation_id = str(uuid.uuid4())
    created = await upload(anonymous_client, conversation_id, b"form", headers, **fields)
    assert created.status_code == 201, created.text
    assert created.json()["conversation_id"] == conversation_id
    assert owner(db, conversation_id) == expected
    listing = await anonymous_client.get(
        "/v1/conversations", params={"user_id": expected[0]} if expected[0] else {}, headers=headers
    )
    assert conversation_id in [item["id"] for item in listing.json()["items"]]
    shown = await anonymous_client.get(f"/v1/conversations/{conversation_id}", headers=headers)
    assert shown.json()["message_count"] == 0
    # The first message lands in the conversation the file made.
    appended = await anonymous_client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={**fields, **messages_body("here is the form")},
        headers=headers,
    )
    assert appended.status_code == 201, appended.text
    assert owner(db, conversation_id) == expected


async def test_only_a_key_names_the_owner_and_never_another_users(
    anonymous_client: Client, api_key: str, db: psycopg.Connection
) -> None:
    key = bearer(api_key)
    conversation_id = str(uuid.uuid4())
    refused = await upload(anonymous_client, conversation_id, headers=ALICE, user_id="bob")
    assert_problem(refused, 403, "user_id")
    refused = await upload(anonymous_client, conversation_id, headers=VISITOR, user_id="bob")
    assert_problem(refused, 403, "user_id")
    assert owner(db, conversation_id) is None
    created = await upload(anonymous_client, conversation_id, headers=key, user_id="bob")
    assert created.status_code == 201
    other = await upload(anonymous_client, conversation_id, b"other", key, user_id="carol")
    assert_problem(other, 409, "user_id")
    again = await upload(anonymous_client, conversation_id, b"again", key, user_id="bob")
    assert again.status_code == 201
    assert db.execute("SELECT count(*) FROM files").fetchone() == (2,)


async def test_someone_elses_conversation_is_still_a_404(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    conversation_id = str(uuid.uuid4())
    assert (await upload(anonymous_client, conversation_id, headers=ALICE)).status_code == 201
    for intruder in (bearer(user_token("bob")), VISITOR):
        assert_problem(
            await upload(anonymous_client, conversation_id, headers=intruder),
            404,
            "conversation_id",
        )
    assert owner(db, conversation_id) == ("alice", False)
    assert db.execute("SELECT count(*) FROM files").fetchone() == (1,)


async def test_creating_by_upload_counts_against_the_conversation_quota(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    for _ in range(2):
        assert (
            await upload(anonymous_client, str(uuid.uuid4()), headers=VISITOR)
        ).status_code == 201
    over = await upload(anonymous_client, str(uuid.uuid4()), headers=VISITOR)
    assert "CHATKEEP_VISITOR_MAX_CONVERSATIONS" in assert_problem(over, 413)["detail"]
    assert db.execute("SELECT count(*), count(DISTINCT blob_id) FROM files").fetchone() == (2, 1)
    assert db.execute("SELECT count(*) FROM conversations").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (1,)


async def test_a_refused_upload_leaves_no_conversation_behind(
    anonymous_client: Client, db: psycopg.Connection
) -> None:
    conversation_id = str(uuid.uuid4())
    refused = await upload(anonymous_client, conversation_id, headers=ALICE, metadata="[1]")
    assert_problem(refused, 422, "metadata")
    refused = await anonymous_client.post(
        files_url(conversation_id), params={"filename": "\t"}, content=b"x", headers=ALICE
    )
    assert_problem(refused, 422, "filename")
    assert db.execute("SELECT count(*) FROM conversations").fetchone() == (0,)


async def test_concurrent_first_uploads_and_appends_to_one_new_id_all_succeed(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    """Each creates the conversation if it is missing (ON CONFLICT DO NOTHING); the losers of
    the race write into the winner's conversation. Meanwhile the same owner uploads the same
    content to a conversation it has: creating takes the owner's usage row, which those
    uploads take after the content's lock, and nothing deadlocks."""
    existing = str(uuid.uuid4())
    assert (await upload(live_client, existing, b"first", user_id="ann")).status_code == 201
    for _ in range(3):
        conversation_id = str(uuid.uuid4())
        uploads = [
            # Two of them with the same content: they also race for the content's lock.
            upload(live_client, conversation_id, b"same" if n < 2 else b"%d" % n, user_id="ann")
            for n in range(6)
        ]
        appends = [
            live_client.post(
                f"/v1/conversations/{conversation_id}/messages",
                json={"user_id": "ann", **messages_body(f"m{n}")},
            )
            for n in range(4)
        ]
        beside = [upload(live_client, existing, b"same", user_id="ann") for _ in range(2)]
        responses = await asyncio.gather(*uploads, *appends, *beside)
        assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
        assert owner(db, conversation_id) == ("ann", False)
        counts = db.execute(
            "SELECT (SELECT count(*) FROM files WHERE conversation_id = %(c)s),"
            " (SELECT count(*) FROM messages WHERE conversation_id = %(c)s)",
            {"c": conversation_id},
        ).fetchone()
        assert counts == (6, 4)
    assert db.execute("SELECT conversations FROM owner_usage").fetchone() == (4,)
    assert db.execute("SELECT count(*) FROM blobs WHERE sha256 = sha256('same')").fetchone() == (1,)


async def test_creating_takes_the_owners_usage_after_the_content(
    live_client: httpx.AsyncClient, database_url: str, db: psycopg.Connection
) -> None:
    """An upload holding some content's lock goes on to lock its owner's usage row. An upload
    creating a conversation of that owner, with that content, must not hold the usage row while
    it waits for the content: the two would deadlock. Here a transaction of the test plays the
    first upload."""
    first = await upload(live_client, str(uuid.uuid4()), b"first", user_id="ann")
    assert first.status_code == 201
    with psycopg.connect(database_url, autocommit=False) as other:
        other.execute("SELECT pg_advisory_xact_lock(blob_lock_key(sha256('same')))")
        creating = asyncio.create_task(
            upload(live_client, str(uuid.uuid4()), b"same", user_id="ann")
        )
        # The lock is in the database: polled, as no event tells.
        while not creating.done() and db.execute(WAITING_FOR_CONTENT).fetchone() != (1,):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        # Instant while the waiting upload holds no lock on the usage row.
        other.execute("SET LOCAL lock_timeout = '5s'")
        other.execute("UPDATE owner_usage SET bytes = bytes WHERE owner = 'user:ann'")
        other.commit()
    created = await creating
    assert created.status_code == 201, created.text


async def test_metadata_round_trips_everywhere(client: Client) -> None:
    conversation_id = str(uuid.uuid4())
    metadata = {"field": "passport_scan", "page": 2, "tags": ["id", "ü"], "ok": None}
    created = await upload(client, conversation_id, metadata=json.dumps(metadata))
    assert created.status_code == 201, created.text
    stored = created.json()
    assert stored["metadata"] == metadata
    file_url = f"{files_url(conversation_id)}/{stored['id']}"
    assert (await client.get(file_url)).json()["metadata"] == metadata
    listed = (await client.get(files_url(conversation_id))).json()["items"]
    assert [item["metadata"] for item in listed] == [metadata]
    # The field may come before the file too; without it, the metadata is {}.
    before = await client.post(
        files_url(conversation_id),
        files=[("metadata", (None, '{"before": true}')), ("file", ("b.txt", b"b", "text/plain"))],
    )
    assert before.json()["metadata"] == {"before": True}
    assert (await upload(client, conversation_id, b"plain")).json()["metadata"] == {}
    raw = await client.post(files_url(conversation_id), params={"filename": "r"}, content=b"r")
    assert raw.json()["metadata"] == {}
    # With a form, ?filename= is optional; when sent, it is checked and names the file.
    named = await client.post(
        files_url(conversation_id),
        params={"filename": "C:\\scans\\named.pdf"},
        files={"file": ("part.pdf", b"n", "application/pdf")},
    )
    assert named.json()["filename"] == "named.pdf"
    bad_name = await client.post(
        files_url(conversation_id),
        params={"filename": "a\tb"},
        files={"file": ("part.pdf", b"n", "application/pdf")},
    )
    assert_problem(bad_name, 422, "filename")

    replaced = await client.patch(file_url, json={"metadata": {"field": "visa"}})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {**stored, "metadata": {"field": "visa"}}
    assert (await client.get(file_url)).json()["metadata"] == {"field": "visa"}


@pytest.mark.parametrize(
    ("metadata", "status", "field"),
    [
        ("not json", 422, "metadata"),
        ("[1, 2]", 422, "metadata"),
        ('"text"', 422, "metadata"),
        ('{"k": "a\\u0000b"}', 422, "metadata.k"),
        ('{"a\\u0000": 1}', 422, "metadata.a\x00"),
        ('{"k": "' + "x" * 300 + '"}', 413, "metadata"),
    ],
)
async def test_bad_metadata_is_refused_naming_it_and_stores_nothing(
    client: Client, db: psycopg.Connection, metadata: str, status: int, field: str
) -> None:
    conversation_id = str(uuid.uuid4())
    assert_problem(await upload(client, conversation_id, metadata=metadata), status, field)
    assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM conversations").fetchone() == (0,)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"metadata": [1]}, 422, "metadata"),
        ({"metadata": {"k": "a\x00"}}, 422, "metadata.k"),
        ({"metadata": {"k": "x" * 300}}, 413, "metadata"),
        ({"metadata": {}, "filename": "x"}, 422, "filename"),
        ({}, 422, "metadata"),
    ],
)
async def test_a_bad_metadata_patch_changes_nothing(
    client: Client, body: dict[str, Any], status: int, field: str
) -> None:
    conversation_id = str(uuid.uuid4())
    stored = (await upload(client, conversation_id, metadata='{"kept": 1}')).json()
    file_url = f"{files_url(conversation_id)}/{stored['id']}"
    assert_problem(await client.patch(file_url, json=body), status, field)
    assert (await client.get(file_url)).json()["metadata"] == {"kept": 1}


async def test_patching_a_missing_or_someone_elses_file_is_a_404(
    anonymous_client: Client,
) -> None:
    conversation_id = str(uuid.uuid4())
    stored = (await upload(anonymous_client, conversation_id, headers=ALICE)).json()
    file_url = f"{files_url(conversation_id)}/{stored['id']}"
    body = {"metadata": {"x": 1}}
    assert_problem(
        await anonymous_client.patch(file_url, json=body, headers=VISITOR), 404, "conversation_id"
    )
    missing = f"{files_url(conversation_id)}/{uuid.uuid4()}"
    assert_problem(await anonymous_client.patch(missing, json=body, headers=ALICE), 404, "file_id")
    gone = f"{files_url(str(uuid.uuid4()))}/{stored['id']}"
    assert_problem(await anonymous_client.patch(gone, json=body, headers=ALICE), 404)


async def test_the_openapi_document_shows_the_uploads_form_and_the_patch(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    files = paths["/v1/conversations/{conversation_id}/files"]["post"]
    form = files["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["required"] == ["file"]
    fields = form["schema"]["properties"]
    assert fields["metadata"]["type"] == "object"
    assert "200 bytes" in fields["metadata"]["description"]
    assert fields["user_id"]["maxLength"] == 255
    assert form["encoding"]["metadata"]["contentType"] == "application/json"
    assert "application/octet-stream" in files["requestBody"]["content"]
    patch = paths["/v1/conversations/{conversation_id}/files/{file_id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FilePatch"
    }
