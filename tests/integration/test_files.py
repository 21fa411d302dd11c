"""Attachments: uploads and downloads byte for byte, ranges, deduplicated storage, limits,
deletion without orphaned bytes, and who may touch whose files."""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from typing import Any

import asyncpg
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.core.errors import NotFound
from service.core.principal import LOCAL, Permission
from service.db.pool import checked_out, init_connection
from service.history import files
from service.store.files import CHUNK_SIZE
from tests.helpers import JWT_SECRET, assert_problem, bearer, create_key, user_token
from tests.integration.conftest import Client, make_settings

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]


async def conversation(client: Client, headers: dict[str, str] | None = None) -> str:
    response = await client.post("/v1/conversations", json={}, headers=headers or {})
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def upload_raw(
    client: Client,
    conversation_id: str,
    content: bytes,
    filename: str = "notes.bin",
    content_type: str = "application/octet-stream",
    **params: str,
) -> Any:
    return await client.post(
        f"/v1/conversations/{conversation_id}/files",
        params={"filename": filename, **params},
        content=content,
        headers={"Content-Type": content_type},
    )


async def upload_form(
    client: Client, conversation_id: str, content: bytes, filename: str = "form.bin"
) -> Any:
    return await client.post(
        f"/v1/conversations/{conversation_id}/files",
        files={"file": (filename, content, "application/pdf")},
    )


def storage(db: psycopg.Connection) -> tuple[int, int, int]:
    """(files, blobs, chunks) rows, straight from SQL."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM blobs), "
        "(SELECT count(*) FROM blob_chunks)"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def assert_no_orphans(db: psycopg.Connection) -> None:
    """Every blob is used by a file, complete, and sealed; every file's bytes are all there."""
    orphans = db.execute(
        "SELECT count(*) FROM blobs b"
        " WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_id = b.id)"
        " OR b.sha256 IS NULL"
        " OR b.size <> (SELECT coalesce(sum(octet_length(data)), 0) FROM blob_chunks c"
        "               WHERE c.blob_id = b.id)"
    ).fetchone()
    assert orphans == (0,)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shape", ["raw", "multipart"])
async def test_upload_and_download_byte_for_byte(
    client: Client, db: psycopg.Connection, size: int, shape: str
) -> None:
    conversation_id = await conversation(client)
    content = os.urandom(size)
    if shape == "raw":
        response = await upload_raw(client, conversation_id, content, "report.bin", "image/png")
        content_type = "image/png"
    else:
        response = await upload_form(client, conversation_id, content, "report.bin")
        content_type = "application/pdf"
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["size"] == size
    assert stored["sha256"] == hashlib.sha256(content).hexdigest()
    assert (stored["filename"], stored["content_type"]) == ("report.bin", content_type)
    url = f"/v1/conversations/{conversation_id}/files/{stored['id']}"

    assert (await client.get(url)).json() == stored
    download = await client.get(f"{url}/content")
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == content_type
    assert download.headers["content-length"] == str(size)
    assert download.headers["etag"] == f'"{stored["sha256"]}"'
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert db.execute("SELECT count(*) FROM blob_chunks").fetchone() == (-(-size // CHUNK_SIZE),)
    assert_no_orphans(db)


async def test_a_unicode_filename_survives_in_the_disposition(client: Client) -> None:
    conversation_id = await conversation(client)
    created = (await upload_raw(client, conversation_id, b"x", 'résumé "final".pdf')).json()
    assert created["filename"] == 'résumé "final".pdf'
    download = await client.get(
        f"/v1/conversations/{conversation_id}/files/{created['id']}/content"
    )
    disposition = download.headers["content-disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf" in disposition
    assert 'filename="r?sum? _final_.pdf"' in disposition


async def test_a_path_in_the_filename_is_cut_to_its_last_part(client: Client) -> None:
    conversation_id = await conversation(client)
    created = (await upload_form(client, conversation_id, b"x", "C:\\Users\\me\\cv.pdf")).json()
    assert created["filename"] == "cv.pdf"


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        (f"bytes={CHUNK_SIZE - 5}-{CHUNK_SIZE + 5}", CHUNK_SIZE - 5, CHUNK_SIZE + 5),
        ("bytes=0-0", 0, 0),
        ("bytes=10-", 10, 3 * CHUNK_SIZE + 16),
        ("bytes=-100", 3 * CHUNK_SIZE - 83, 3 * CHUNK_SIZE + 16),
        ("bytes=5-99999999", 5, 3 * CHUNK_SIZE + 16),
        (f"bytes={2 * CHUNK_SIZE}-{3 * CHUNK_SIZE - 1}", 2 * CHUNK_SIZE, 3 * CHUNK_SIZE - 1),
    ],
)
async def test_range_requests(client: Client, range_header: str, first: int, last: int) -> None:
    conversation_id = await conversation(client)
    content = os.urandom(3 * CHUNK_SIZE + 17)
    created = (await upload_raw(client, conversation_id, content)).json()
    url = f"/v1/conversations/{conversation_id}/files/{created['id']}/content"
    response = await client.get(url, headers={"Range": range_header})
    assert response.status_code == 206
    assert response.content == content[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(content)}"
    assert response.headers["content-length"] == str(last - first + 1)


async def test_ranges_that_select_nothing_or_are_not_honoured(client: Client) -> None:
    conversation_id = await conversation(client)
    content = os.urandom(1000)
    created = (await upload_raw(client, conversation_id, content)).json()
    url = f"/v1/conversations/{conversation_id}/files/{created['id']}/content"
    refused = await client.get(url, headers={"Range": "bytes=1000-"})
    assert_problem(refused, 416, "Range")
    assert refused.headers["content-range"] == "bytes */1000"
    # Several ranges, another unit, or a stale If-Range: the whole file, as RFC 9110 allows.
    for headers in (
        {"Range": "bytes=0-1,5-6"},
        {"Range": "items=0-1"},
        {"Range": "bytes=0-1", "If-Range": '"stale"'},
    ):
        whole = await client.get(url, headers=headers)
        assert (whole.status_code, whole.content) == (200, content)
    current = await client.get(
        url, headers={"Range": "bytes=0-1", "If-Range": f'"{created["sha256"]}"'}
    )
    assert (current.status_code, current.content) == (206, content[:2])


async def test_if_none_match_answers_304(client: Client) -> None:
    conversation_id = await conversation(client)
    created = (await upload_raw(client, conversation_id, b"cached")).json()
    url = f"/v1/conversations/{conversation_id}/files/{created['id']}/content"
    response = await client.get(url, headers={"If-None-Match": f'"{created["sha256"]}"'})
    assert (response.status_code, response.content) == (304, b"")
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200


async def test_identical_content_is_stored_once(client: Client, db: psycopg.Connection) -> None:
    content = os.urandom(CHUNK_SIZE + 10)
    first, second = await conversation(client), await conversation(client)
    for conversation_id in (first, second, second):
        assert (await upload_raw(client, conversation_id, content)).status_code == 201
    assert storage(db) == (3, 1, 2)


async def test_listing_pages_oldest_first(client: Client) -> None:
    conversation_id = await conversation(client)
    ids = [(await upload_raw(client, conversation_id, bytes([n]))).json()["id"] for n in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(f"/v1/conversations/{conversation_id}/files", params=params)
        ).json()
        seen += [item["id"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ids
    empty = await conversation(client)
    assert (await client.get(f"/v1/conversations/{empty}/files")).json() == {
        "items": [],
        "next_cursor": None,
    }


async def test_retrying_an_upload_with_its_id_stores_it_once(
    client: Client, db: psycopg.Connection
) -> None:
    conversation_id = await conversation(client)
    file_id = str(uuid.uuid4())
    first = await upload_raw(client, conversation_id, b"same bytes", file_id=file_id)
    again = await upload_raw(client, conversation_id, b"same bytes", file_id=file_id)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    clash = await upload_raw(client, conversation_id, b"other bytes", file_id=file_id)
    assert_problem(clash, 409, "file_id")
    assert storage(db) == (1, 1, 1)
    assert_no_orphans(db)


async def test_deleting_releases_bytes_only_with_the_last_file(
    client: Client, db: psycopg.Connection
) -> None:
    content = os.urandom(CHUNK_SIZE * 2)
    conversation_id = await conversation(client)
    a = (await upload_raw(client, conversation_id, content)).json()["id"]
    b = (await upload_raw(client, conversation_id, content)).json()["id"]
    url = f"/v1/conversations/{conversation_id}/files"
    assert (await client.delete(f"{url}/{a}")).status_code == 204
    assert storage(db) == (1, 1, 2)
    assert (await client.get(f"{url}/{b}/content")).content == content
    assert_problem(await client.delete(f"{url}/{a}"), 404, "file_id")
    assert (await client.delete(f"{url}/{b}")).status_code == 204
    assert storage(db) == (0, 0, 0)


async def test_deleting_the_conversation_removes_its_files(
    client: Client, db: psycopg.Connection
) -> None:
    kept, doomed = await conversation(client), await conversation(client)
    shared = os.urandom(500)
    await upload_raw(client, kept, shared)
    await upload_raw(client, doomed, shared)
    await upload_raw(client, doomed, os.urandom(CHUNK_SIZE + 1))
    assert (await client.delete(f"/v1/conversations/{doomed}")).status_code == 204
    assert storage(db) == (1, 1, 1)
    assert_no_orphans(db)


async def test_erasing_a_user_removes_their_files(client: Client, db: psycopg.Connection) -> None:
    alice = bearer(user_token("alice"))
    shared = os.urandom(CHUNK_SIZE + 3)
    for _ in range(3):
        conversation_id = await conversation(client, alice)
        for content in (shared, os.urandom(100)):
            response = await client.post(
                f"/v1/conversations/{conversation_id}/files",
                params={"filename": "a.txt"},
                content=content,
                headers=alice,
            )
            assert response.status_code == 201, response.text
    assert storage(db) == (6, 4, 5)
    erased = await client.delete("/v1/users/alice")
    assert erased.status_code == 200, erased.text
    assert storage(db) == (0, 0, 0)


async def test_deleting_by_hand_in_sql_leaves_no_orphans(
    client: Client, db: psycopg.Connection
) -> None:
    conversation_id = await conversation(client)
    await upload_raw(client, conversation_id, os.urandom(CHUNK_SIZE * 2 + 1))
    db.execute("DELETE FROM files")
    assert storage(db) == (0, 0, 0)


@pytest.fixture
async def small_limits(database_url: str, api_key: str) -> Any:
    """A service allowing files of 300 KiB and 500 KiB per conversation."""
    settings = make_settings(
        database_url,
        max_file_bytes=str(300 * 1024),
        max_conversation_file_bytes=str(500 * 1024),
    )
    app: Litestar = create_app(settings)
    async with AsyncTestClient(app=app) as limited:
        limited.headers["Authorization"] = f"Bearer {api_key}"
        yield limited


async def test_a_file_over_the_limit_is_a_413_and_stores_nothing(
    small_limits: Client, db: psycopg.Connection
) -> None:
    conversation_id = await conversation(small_limits)
    too_big = os.urandom(300 * 1024 + 1)
    assert_problem(await upload_raw(small_limits, conversation_id, too_big), 413, "file")
    assert_problem(await upload_form(small_limits, conversation_id, too_big), 413, "file")

    assert storage(db) == (0, 0, 0)
    exactly = await upload_raw(small_limits, conversation_id, too_big[:-1])
    assert exactly.status_code == 201


async def test_a_conversation_over_its_total_is_a_413(
    small_limits: Client, db: psycopg.Connection
) -> None:
    conversation_id = await conversation(small_limits)
    assert (
        await upload_raw(small_limits, conversation_id, os.urandom(300 * 1024))
    ).status_code == 201
    over = await upload_raw(small_limits, conversation_id, os.urandom(200 * 1024 + 1))
    assert_problem(over, 413, "file")
    assert storage(db) == (1, 1, 2)
    assert (
        await upload_raw(small_limits, conversation_id, os.urandom(200 * 1024))
    ).status_code == 201


@pytest.mark.parametrize(
    ("params", "headers", "body", "field"),
    [
        ({}, {"Content-Type": "text/plain"}, b"no name", "filename"),
        ({"filename": ""}, {}, b"x", "filename"),
        ({"filename": "a\tb"}, {}, b"x", "filename"),
        ({"filename": "x" * 256}, {}, b"x", "filename"),
        ({"filename": "a.txt"}, {"Content-Type": "not a type"}, b"x", "content_type"),
        ({"filename": "a.txt", "file_id": "not-a-uuid"}, {}, b"x", "file_id"),
        ({}, {"Content-Type": "multipart/form-data"}, b"x", "Content-Type"),
        (
            {},
            {"Content-Type": "multipart/form-data; boundary=B"},
            b'--B\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--B--\r\n',
            "other",
        ),
        (
            {},
            {"Content-Type": "multipart/form-data; boundary=B"},
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nx',
            "body",
        ),
        ({}, {"Content-Type": "multipart/form-data; boundary=B"}, b"--B--\r\n", "file"),
        (
            {},
            {"Content-Type": "multipart/form-data; boundary=B"},
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nx\r\n'
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\ny\r\n'
            b"--B--\r\n",
            "file",
        ),
    ],
)
async def test_bad_uploads_are_4xx_naming_the_field(  # noqa: PLR0917 (parametrized)
    client: Client,
    db: psycopg.Connection,
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    field: str,
) -> None:
    conversation_id = await conversation(client)
    response = await client.post(
        f"/v1/conversations/{conversation_id}/files", params=params, headers=headers, content=body
    )
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code, field)
    assert storage(db) == (0, 0, 0)


async def test_unknown_conversation_or_file_is_404(client: Client) -> None:
    missing = str(uuid.uuid4())
    # (An upload to a missing conversation creates it: test_files_new_conversation.py.)
    assert_problem(await client.get(f"/v1/conversations/{missing}/files"), 404, "conversation_id")
    conversation_id = await conversation(client)
    base = f"/v1/conversations/{conversation_id}/files/{uuid.uuid4()}"
    for response in (
        await client.get(base),
        await client.get(f"{base}/content"),
        await client.delete(base),
    ):
        assert_problem(response, 404, "file_id")


async def test_others_cannot_see_or_touch_a_file(
    anonymous_client: Client, api_key: str, database_url: str, db: psycopg.Connection
) -> None:
    alice = bearer(user_token("alice"))
    conversation_id = await conversation(anonymous_client, alice)
    created = await anonymous_client.post(
        f"/v1/conversations/{conversation_id}/files",
        params={"filename": "private.txt"},
        content=b"alice's",
        headers=alice,
    )
    assert created.status_code == 201, created.text
    files_url = f"/v1/conversations/{conversation_id}/files"
    file_url = f"{files_url}/{created.json()['id']}"
    intruders = [
        bearer(user_token("bob")),
        {"X-Session-ID": "visitor-x-0123456789abcdef"},
    ]
    for intruder in intruders:
        for method, url in (
            ("GET", files_url),
            ("GET", file_url),
            ("GET", f"{file_url}/content"),
            ("DELETE", file_url),
        ):
            response = await anonymous_client.request(method, url, headers=intruder)
            assert_problem(response, 404)
        upload = await anonymous_client.post(
            files_url, params={"filename": "x"}, content=b"x", headers=intruder
        )
        assert_problem(upload, 404, "conversation_id")
    reader = bearer(await create_key(database_url, [Permission.READ]))
    assert_problem(
        await anonymous_client.post(
            files_url, params={"filename": "x"}, content=b"x", headers=reader
        ),
        403,
    )
    assert (await anonymous_client.get(f"{file_url}/content", headers=reader)).content == b"alice's"
    assert (await anonymous_client.get(f"{file_url}/content", headers=alice)).content == b"alice's"
    assert_problem(await anonymous_client.get(f"{file_url}/content"), 401)
    assert storage(db) == (1, 1, 1)


assert JWT_SECRET  # the settings fixture signs user tokens with it


async def test_a_download_never_serves_other_bytes_than_its_headers_describe(
    client: Client, database_url: str, db: psycopg.Connection
) -> None:
    """The file is replaced (deleted, and uploaded again under its id) between the metadata
    the headers come from and the reading of its bytes: the download stops with an error,
    never sends the new content under the old headers."""
    conversation_id = await conversation(client)
    file_id = str(uuid.uuid4())
    old = b"o" * (3 * CHUNK_SIZE)
    assert (await upload_raw(client, conversation_id, old, file_id=file_id)).status_code == 201
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, init=init_connection)
    try:
        connect = functools.partial(checked_out, pool, 5)
        async with connect() as conn:
            download = await files.open_download(
                conn, LOCAL, uuid.UUID(conversation_id), uuid.UUID(file_id)
            )
        assert download.file.sha256 == hashlib.sha256(old).hexdigest()
        url = f"/v1/conversations/{conversation_id}/files/{file_id}"
        assert (await client.delete(url)).status_code == 204
        new = b"n" * (3 * CHUNK_SIZE)
        assert (await upload_raw(client, conversation_id, new, file_id=file_id)).status_code == 201
        received: list[bytes] = []

        async def read_all() -> None:
            async for piece in files.content(connect, download, first=0, last=len(old) - 1):
                received.append(piece)

        with pytest.raises(NotFound, match="deleted during the download"):
            await read_all()
        assert b"n" not in b"".join(received)
    finally:
        await pool.close()


async def test_a_part_whose_media_type_is_not_ascii_is_refused_at_upload(
    client: Client, db: psycopg.Connection
) -> None:
    """Its type would go back out as a header: refused when it comes in, not a 500 later."""
    conversation_id = await conversation(client)
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/\xe4\xb8\xad\r\n\r\nx\r\n--B--\r\n"
    )
    response = await client.post(
        f"/v1/conversations/{conversation_id}/files",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    assert_problem(response, 422, "content_type")
    assert storage(db) == (0, 0, 0)


@pytest.mark.parametrize("digits", [5000, 30])
async def test_a_range_of_thousands_of_digits_is_unsatisfiable_not_a_500(
    client: Client, digits: int
) -> None:
    conversation_id = await conversation(client)
    stored = (await upload_raw(client, conversation_id, b"0123456789")).json()
    response = await client.get(
        f"/v1/conversations/{conversation_id}/files/{stored['id']}/content",
        headers={"Range": f"bytes={'9' * digits}-"},
    )
    assert_problem(response, 416, "Range")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # A preamble that never ends: the parser would skip it for as long as it lasts.
        (b"x" * (100 * 1024), "body"),
        # More part headers than RFC 7578 has a use for.
        (
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
            + b"".join(b"X-%d: y\r\n" % n for n in range(20))
            + b"\r\nx\r\n--B--\r\n",
            "file",
        ),
        # One header line of 8 KiB.
        (
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="'
            + b"a" * 8192
            + b'"\r\n\r\nx\r\n--B--\r\n',
            "file",
        ),
    ],
)
async def test_the_multipart_envelope_is_bounded(
    client: Client, db: psycopg.Connection, body: bytes, field: str
) -> None:
    conversation_id = await conversation(client)
    response = await client.post(
        f"/v1/conversations/{conversation_id}/files",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    assert_problem(response, 422, field)
    assert storage(db) == (0, 0, 0)
