"""System prompts: immutable versions, latest and pinned reads, listings, retiring, access."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from service.core.principal import Permission
from tests.helpers import assert_problem, bearer, create_key, user_token
from tests.integration.conftest import Client


async def put(client: Client, name: str, content: str, **fields: object) -> httpx.Response:
    return await client.put(f"/v1/prompts/{name}", json={"content": content, **fields})


async def test_every_change_is_a_new_version(client: Client) -> None:
    first = await put(client, "support.agent", "Be kind.", metadata={"model": "m1"})
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    second = await put(client, "support.agent", "Be kind and brief.")
    assert (second.status_code, second.json()["version"]) == (201, 2)
    latest = (await client.get("/v1/prompts/support.agent")).json()
    assert latest == second.json()
    pinned = (await client.get("/v1/prompts/support.agent", params={"version": 1})).json()
    assert pinned == first.json()
    assert pinned["metadata"] == {"model": "m1"}


async def test_putting_the_latest_text_again_adds_no_version(client: Client) -> None:
    first = await put(client, "retry", "Same.")
    again = await put(client, "retry", "Same.")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other_metadata = await put(client, "retry", "Same.", metadata={"v": 2})
    assert other_metadata.json()["version"] == 2


async def test_versions_page_newest_first(client: Client) -> None:
    for n in range(5):
        await put(client, "paged", f"text {n}")
    seen: list[int] = []
    before: int | None = None
    while True:
        params = {"limit": 2, **({"before": before} if before else {})}
        page = (await client.get("/v1/prompts/paged/versions", params=params)).json()
        seen += [item["version"] for item in page["items"]]
        if (before := page["next_cursor"]) is None:
            break
    assert seen == [5, 4, 3, 2, 1]


async def test_listing_by_name(client: Client) -> None:
    for name in ("b", "a", "c"):
        await put(client, name, "x")
    first = (await client.get("/v1/prompts", params={"limit": 2})).json()
    assert [item["name"] for item in first["items"]] == ["a", "b"]
    rest = (await client.get("/v1/prompts", params={"after": first["next_cursor"]})).json()
    assert [(item["name"], item["latest_version"]) for item in rest["items"]] == [("c", 1)]
    assert rest["next_cursor"] is None


async def test_retiring_hides_a_prompt_and_a_new_put_continues_its_numbering(
    client: Client, db: psycopg.Connection
) -> None:
    await put(client, "old", "v1")
    await put(client, "old", "v2")
    assert (await client.delete("/v1/prompts/old")).status_code == 204
    for url in ("/v1/prompts/old", "/v1/prompts/old?version=1", "/v1/prompts/old/versions"):
        assert_problem(await client.get(url), 404)
    assert (await client.get("/v1/prompts")).json()["items"] == []
    assert_problem(await client.delete("/v1/prompts/old"), 404, "name")
    assert db.execute("SELECT count(*) FROM prompt_versions WHERE name = 'old'").fetchone() == (2,)
    back = await put(client, "old", "v2")
    assert (back.status_code, back.json()["version"]) == (201, 3)


def test_versions_cannot_be_changed_even_in_sql(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO prompts (name, latest_version) VALUES ('fixed', 1)")
    db.execute("INSERT INTO prompt_versions (name, version, content) VALUES ('fixed', 1, 'a')")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="immutable"):
        db.execute("UPDATE prompt_versions SET content = 'b' WHERE name = 'fixed'")


async def test_concurrent_puts_number_versions_without_gaps(
    live_client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(live_client.put("/v1/prompts/busy", json={"content": f"text {n}"}) for n in range(20))
    )
    assert {response.status_code for response in responses} == {201}
    assert sorted(response.json()["version"] for response in responses) == list(range(1, 21))


async def test_concurrent_identical_puts_store_one_version(
    live_client: httpx.AsyncClient, db: psycopg.Connection
) -> None:
    """Retries of one PUT racing each other (of a new prompt, and of a new text of an existing
    one) store it once: one 201, the others 200 with the same version."""
    await live_client.put("/v1/prompts/raced-1", json={"content": "old"})
    for round_ in range(5):
        names = [f"raced-{round_}-new", "raced-1"]
        for name in names:
            body = {"content": f"text {round_}"}
            responses = await asyncio.gather(
                *(live_client.put(f"/v1/prompts/{name}", json=body) for _ in range(8))
            )
            assert sorted(response.status_code for response in responses) == [200] * 7 + [201]
            assert len({response.json()["version"] for response in responses}) == 1
    counts = db.execute(
        "SELECT name, count(*) FROM prompt_versions GROUP BY name ORDER BY name"
    ).fetchall()
    assert counts == [("raced-0-new", 1), ("raced-1", 6)] + [
        (f"raced-{n}-new", 1) for n in range(1, 5)
    ]


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("ok", {}, "content"),
        ("ok", {"content": 1}, "content"),
        ("ok", {"content": "a\u0000b"}, "content"),
        ("ok", {"content": "x", "metadata": []}, "metadata"),
        ("ok", {"content": "x", "surprise": True}, "surprise"),
        ("-leading-dash", {"content": "x"}, "name"),
        ("n" * 129, {"content": "x"}, "name"),
        ("sp%20ace", {"content": "x"}, "name"),
    ],
)
async def test_bad_prompts_are_422_naming_the_field(
    client: Client, name: str, body: dict[str, object], field: str
) -> None:
    assert_problem(await client.put(f"/v1/prompts/{name}", json=body), 422, field)


async def test_bad_reads_are_4xx(client: Client) -> None:
    await put(client, "p", "x")
    assert_problem(await client.get("/v1/prompts/p", params={"version": 0}), 422, "version")
    assert_problem(await client.get("/v1/prompts/p", params={"version": 2}), 404, "version")
    assert_problem(await client.get("/v1/prompts/missing"), 404, "name")
    assert_problem(await client.get("/v1/prompts", params={"limit": 0}), 422, "limit")


async def test_only_api_keys_manage_prompts(anonymous_client: Client, database_url: str) -> None:
    writer = bearer(await create_key(database_url, [Permission.READ, Permission.WRITE]))
    reader = bearer(await create_key(database_url, [Permission.READ]))
    created = await anonymous_client.put("/v1/prompts/p", json={"content": "x"}, headers=writer)
    assert created.status_code == 201
    assert (await anonymous_client.get("/v1/prompts/p", headers=reader)).status_code == 200
    assert_problem(
        await anonymous_client.put("/v1/prompts/p", json={"content": "y"}, headers=reader), 403
    )
    assert_problem(await anonymous_client.delete("/v1/prompts/p", headers=reader), 403)
    for outsider in (bearer(user_token("alice")), {"X-Session-ID": "visitor-0123456789abcdef"}):
        assert_problem(await anonymous_client.get("/v1/prompts/p", headers=outsider), 403)
        assert_problem(await anonymous_client.get("/v1/prompts", headers=outsider), 403)
    assert_problem(await anonymous_client.get("/v1/prompts"), 401)
