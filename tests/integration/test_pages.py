"""The browser pages as HTTP sees them: absent unless switched on, their files and security
headers, and the demo's log-in (the pages themselves run in Chromium: tests/browser/)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest
from litestar.testing import AsyncTestClient

from service.api import pages
from service.app import create_app
from service.core.settings import SettingsError
from tests.helpers import JWT_SECRET, assert_problem, bearer
from tests.integration.conftest import Client, make_settings

CONSOLE_FILES = ["/console", "/console/console.js", "/console/console.css", "/console/dom.js"]
DEMO_FILES = ["/demo", "/demo/demo.js", "/demo/demo.css", "/demo/dom.js"]
CLIENT_FILES = ["/console/chatkeep.js", "/demo/chatkeep.js"]


@pytest.fixture
async def pages_client(database_url: str) -> AsyncIterator[Client]:
    settings = make_settings(
        database_url, console="true", demo="true", jwt_secret=JWT_SECRET, allow_anonymous="true"
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("path", [*CONSOLE_FILES, *DEMO_FILES, *CLIENT_FILES, "/demo/login"])
async def test_the_pages_do_not_exist_unless_switched_on(client: Client, path: str) -> None:
    assert (await client.get(path)).status_code == 404
    assert (await client.post(path, json={"username": "x"})).status_code in (404, 405)


@pytest.mark.parametrize("path", [*CONSOLE_FILES, *DEMO_FILES, *CLIENT_FILES])
async def test_every_file_carries_the_content_security_policy(
    pages_client: Client, path: str
) -> None:
    response = await pages_client.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "unsafe" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    kind = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else "html"
    expected = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[kind]
    assert response.headers["content-type"].startswith(expected)


async def test_the_client_served_is_the_repositorys(pages_client: Client) -> None:
    served = (await pages_client.get("/demo/chatkeep.js")).content
    assert served == pages.CLIENT_FILES[1].read_bytes()


async def test_the_pages_hold_no_inline_script_or_style(pages_client: Client) -> None:
    for path in ("/console", "/demo"):
        html = (await pages_client.get(path)).text
        assert "<script>" not in html
        assert " style=" not in html
        assert " on" not in html.replace(" one", "")  # no onclick= and the like


async def test_an_unknown_file_is_a_404(pages_client: Client) -> None:
    for path in ("/console/secret.txt", "/console/..%2Fapp.py", "/demo/console.js"):
        assert (await pages_client.get(path)).status_code == 404


async def test_the_pages_stay_out_of_the_openapi_document(pages_client: Client) -> None:
    paths = (await pages_client.get("/schema/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/console", "/demo"))]


async def test_the_demo_login_signs_a_token_for_a_demo_user(pages_client: Client) -> None:
    response = await pages_client.post("/demo/login", json={"username": "ada"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    issued = response.json()
    assert issued["user_id"] == "demo:ada"
    claims = jwt.decode(issued["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "demo:ada"
    listed = await pages_client.get("/v1/conversations", headers=bearer(issued["access_token"]))
    assert listed.status_code == 200


@pytest.mark.parametrize("username", ["", "a b", "alice/admin", "x" * 65, "ünï"])
async def test_the_demo_login_refuses_other_names(pages_client: Client, username: str) -> None:
    response = await pages_client.post("/demo/login", json={"username": username})
    assert_problem(response, response.status_code, "username")
    assert response.status_code in (400, 422)


def test_the_demo_needs_user_tokens_and_visitors(database_url: str) -> None:
    with pytest.raises(SettingsError, match="CHATKEEP_DEMO"):
        make_settings(database_url, demo="true", allow_anonymous="true")
    with pytest.raises(SettingsError, match="CHATKEEP_ALLOW_ANONYMOUS"):
        make_settings(database_url, demo="true", jwt_secret=JWT_SECRET)
