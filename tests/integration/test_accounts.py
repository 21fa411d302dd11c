"""Accounts kept by chatkeep (CHATKEEP_ACCOUNTS): `chatkeep users ...`, POST /v1/auth/token, and
the tokens it issues used like any user token."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.cli import main
from service.history import accounts
from tests.helpers import JWT_SECRET, assert_problem, bearer
from tests.integration.conftest import Client, make_settings

TOKEN = "/v1/auth/token"
PASSWORD = "correct horse battery"
AUDIENCE = "chatkeep-tests"
FAILED_LOGINS = 3


@pytest.fixture
def cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """`chatkeep ...` as an operator runs it: (exit code, stdout, stderr), the password on
    standard input when given."""
    monkeypatch.setenv("DATABASE_URL", database_url)

    async def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin or ""))
        # In a thread: the command runs its own event loop.
        code = await asyncio.to_thread(main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def create_account(cli: Any, username: str, *options: str, password: str = PASSWORD) -> None:
    code, out, err = await cli(
        "users", "create", username, *options, "--password-stdin", stdin=password + "\n"
    )
    assert code == 0, err
    assert f"created account {username}" in out


@pytest.fixture
async def accounts_client(database_url: str) -> AsyncIterator[Client]:
    """A deployment with accounts on, sending no credentials unless a request adds them."""
    settings = make_settings(
        database_url,
        jwt_secret=JWT_SECRET,
        jwt_audience=AUDIENCE,
        accounts="true",
        failed_logins_per_minute=str(FAILED_LOGINS),
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


def stored_hash(db: psycopg.Connection, username: str) -> str:
    row = db.execute("SELECT password_hash FROM accounts WHERE username = %s", (username,))
    (password_hash,) = row.fetchone() or (None,)
    assert isinstance(password_hash, str)
    return password_hash


async def log_in(client: Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(TOKEN, json={"username": username, "password": password})


async def test_a_created_account_logs_in_and_its_token_reads_its_conversations(
    cli: Any, accounts_client: Client, db: psycopg.Connection
) -> None:
    await create_account(cli, "alice")
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    db.execute(
        "INSERT INTO conversations (id, user_id) VALUES (%s, 'alice'), (%s, 'bob')", (mine, theirs)
    )

    before = int(time.time())
    response = await log_in(accounts_client, "alice")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user_id"] == "alice"
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "alice"
    assert before + 3600 <= claims["exp"] <= int(time.time()) + 3600

    listed = await accounts_client.get("/v1/conversations", headers=bearer(body["access_token"]))
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [str(mine)]


async def test_an_account_may_log_in_as_another_user_id(cli: Any, accounts_client: Client) -> None:
    await create_account(cli, "carol@example.com", "--user-id", "42")
    response = await log_in(accounts_client, "carol@example.com")
    assert response.json()["user_id"] == "42"
    token = response.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "42"
    code, _, err = await cli(
        "users", "create", "dave", "--user-id", "42", "--password-stdin", stdin=PASSWORD
    )
    assert code == 1
    assert "user_id" in err


async def test_unknown_user_wrong_password_and_disabled_account_get_the_same_401(
    cli: Any, accounts_client: Client
) -> None:
    await create_account(cli, "erin")
    await create_account(cli, "frank")
    assert (await cli("users", "disable", "frank"))[0] == 0

    refusals = [
        await log_in(accounts_client, "nobody"),
        await log_in(accounts_client, "erin", "not the password"),
        await log_in(accounts_client, "frank"),
    ]
    bodies = [assert_problem(response, 401, "password") for response in refusals]
    assert bodies[0] == bodies[1] == bodies[2]
    assert {response.headers["www-authenticate"] for response in refusals} == {
        'Bearer realm="chatkeep"'
    }

    assert (await cli("users", "enable", "frank"))[0] == 0
    assert (await log_in(accounts_client, "frank")).status_code == 200


async def test_an_unknown_user_costs_a_verification_too(
    accounts_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    matches = accounts._matches

    def counting(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return matches(password_hash, password)

    monkeypatch.setattr(accounts, "_matches", counting)
    assert_problem(await log_in(accounts_client, "nobody"), 401)
    assert len(checked) == 1
    assert checked[0].startswith("$argon2id$")


async def test_passwd_replaces_the_password(cli: Any, accounts_client: Client) -> None:
    await create_account(cli, "grace")
    code, out, _ = await cli(
        "users", "passwd", "grace", "--password-stdin", stdin="a new password\n"
    )
    assert (code, out.strip()) == (0, "changed the password of grace")
    assert_problem(await log_in(accounts_client, "grace"), 401)
    assert (await log_in(accounts_client, "grace", "a new password")).status_code == 200


async def test_only_a_hash_is_stored_and_old_parameters_are_upgraded(
    cli: Any, accounts_client: Client, db: psycopg.Connection
) -> None:
    await create_account(cli, "heidi")
    stored = stored_hash(db, "heidi")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored

    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    db.execute("UPDATE accounts SET password_hash = %s WHERE username = 'heidi'", (weak,))
    assert (await log_in(accounts_client, "heidi")).status_code == 200
    upgraded = stored_hash(db, "heidi")
    assert upgraded != weak
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert (await log_in(accounts_client, "heidi")).status_code == 200


async def test_failed_logins_of_a_username_are_rate_limited(
    cli: Any, accounts_client: Client
) -> None:
    await create_account(cli, "ivan")
    await create_account(cli, "judy")
    for _ in range(FAILED_LOGINS):
        assert_problem(await log_in(accounts_client, "ivan", "guess"), 401)
    # Now even the right password waits: the limit bounds guessing.
    refused = await log_in(accounts_client, "ivan")
    problem = assert_problem(refused, 429, "username")
    assert "CHATKEEP_FAILED_LOGINS_PER_MINUTE" in problem["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Other usernames are not held back.
    assert (await log_in(accounts_client, "judy")).status_code == 200


async def test_failed_logins_count_against_the_client_address(cli: Any, database_url: str) -> None:
    await create_account(cli, "ken")
    settings = make_settings(
        database_url, jwt_secret=JWT_SECRET, accounts="true", failed_auth_per_minute="2"
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        for username in ("a", "b"):
            assert_problem(await log_in(client, username), 401)
        refused = await log_in(client, "ken")
        problem = assert_problem(refused, 429, "password")
        assert "CHATKEEP_FAILED_AUTH_PER_MINUTE" in problem["detail"]
        assert "retry-after" in refused.headers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "alice"}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "al\nice", "password": PASSWORD}, "username"),
        ({"username": "alice", "password": ""}, "password"),
        ({"username": "alice", "password": "x" * 1025}, "password"),
        ({"username": "alice", "password": "p\x00ss"}, "password"),
        ({"username": 7, "password": PASSWORD}, "username"),
        ({"username": "alice", "password": PASSWORD, "role": "admin"}, "role"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    accounts_client: Client, body: dict[str, Any], field: str
) -> None:
    assert_problem(await accounts_client.post(TOKEN, json=body), 422, field)


async def test_the_cli_refuses_bad_accounts_and_names_what_is_wrong(cli: Any) -> None:
    code, _, err = await cli("users", "create", "kim", "--password-stdin", stdin="short\n")
    assert code == 2
    assert "password: must be 8 to 1024 characters" in err
    code, _, err = await cli("users", "create", "k\tim", "--password-stdin", stdin=PASSWORD)
    assert (code, "username" in err) == (2, True)
    await create_account(cli, "kim")
    code, _, err = await cli("users", "create", "kim", "--password-stdin", stdin=PASSWORD)
    assert code == 1
    assert "an account kim exists already" in err
    for action in ("passwd", "disable", "enable"):
        options = ["--password-stdin"] if action == "passwd" else []
        code, _, err = await cli("users", action, "nobody", *options, stdin=PASSWORD)
        assert (code, err.strip()) == (1, "chatkeep: username: no account nobody")
    # Without a terminal, a password must come with --password-stdin.
    code, _, err = await cli("users", "create", "lena")
    assert code == 2
    assert "--password-stdin" in err


async def test_users_list_shows_accounts_and_never_their_hashes(cli: Any) -> None:
    await create_account(cli, "mallory", "--user-id", "u-17")
    await cli("users", "disable", "mallory")
    code, out, _ = await cli("users", "list")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("mallory")]
    assert row.split()[1] == "u-17"
    assert "argon2" not in out


async def test_accounts_are_off_by_default(
    cli: Any, anonymous_client: Client, api_key: str
) -> None:
    await create_account(cli, "nina")
    assert_problem(await log_in(anonymous_client, "nina"), 404)
    # Not even with credentials, and not in the OpenAPI document.
    response = await anonymous_client.post(
        TOKEN, json={"username": "nina", "password": PASSWORD}, headers=bearer(api_key)
    )
    assert response.status_code == 404
    paths = (await anonymous_client.get("/schema/openapi.json")).json()["paths"]
    assert TOKEN not in paths


async def test_the_token_endpoint_is_documented_as_public(accounts_client: Client) -> None:
    document = (await accounts_client.get("/schema/openapi.json")).json()
    operation = document["paths"][TOKEN]["post"]
    assert "security" not in operation
    assert set(operation["responses"]) >= {"200", "401", "422", "429"}
    request = document["components"]["schemas"]["TokenRequest"]
    assert request["additionalProperties"] is False
    assert request["properties"]["username"]["maxLength"] == 255
