"""The JavaScript client (clients/js): its Node tests against a real server, and its package.

`node --test` runs clients/js/test/*.test.js with the server's URL and credentials in the
environment; its own output is shown when it fails. Without Node (or npm, for the package) the
tests are skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.history import accounts
from tests.helpers import JWT_SECRET
from tests.integration.conftest import make_settings
from tests.live import live_service

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")
NODE_SECONDS = 300
ACCOUNT = {"username": "js-account", "password": "correct horse battery staple"}
# What the Node tests need the server to allow: user tokens, visitors, accounts, no rate limit
# that a whole run of one user could reach.
SERVER_SETTINGS = {
    "jwt_secret": JWT_SECRET,
    "allow_anonymous": "true",
    "accounts": "true",
    "requests_per_minute": "0",
    "failed_auth_per_minute": "0",
}

needs_node = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the JavaScript client's tests need Node 20+"
)
needs_npm = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="npm is not installed: packing the JavaScript client needs it",
)


async def create_account(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await accounts.create(conn, **ACCOUNT)
    finally:
        await conn.close()


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs ``command``; fails the test with everything it printed unless it exits 0."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_SECONDS,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-20000:]}"
    return output


@needs_node
async def test_the_node_tests_pass_against_a_real_server(database_url: str, api_key: str) -> None:
    await create_account(database_url)
    tests = sorted(str(path) for path in (CLIENT / "test").glob("*.test.js"))
    assert tests, "no clients/js/test/*.test.js"
    with live_service(database_url, **SERVER_SETTINGS) as (base_url, _):
        env = {
            "PATH": str(Path(NODE or "node").parent),
            "CHATKEEP_URL": base_url,
            "CHATKEEP_API_KEY": api_key,
            "CHATKEEP_JWT_SECRET": JWT_SECRET,
            "CHATKEEP_TEST_USERNAME": ACCOUNT["username"],
            "CHATKEEP_TEST_PASSWORD": ACCOUNT["password"],
        }
        # The spec reporter ends with the failing tests, so the tail shown on failure has them.
        command = [NODE or "node", "--test", "--test-reporter=spec", *tests]
        output = run(command, cwd=CLIENT, env=env)
    # Node counts what ran: a run that found no test would pass too.
    assert re.search(r"^\S+ fail 0$", output, re.MULTILINE), output[-20000:]
    assert not re.search(r"^\S+ pass 0$", output, re.MULTILINE), output[-20000:]


@needs_npm
def test_npm_pack_makes_a_package_that_installs_and_imports(tmp_path: Path) -> None:
    """The tarball holds the module, its types and README only, and installs without the
    network (it has no dependencies) into a project that imports it by name."""
    packed = json.loads(
        run([NPM or "npm", "pack", "--json", "--pack-destination", str(tmp_path)], cwd=CLIENT)
    )
    tarball = tmp_path / packed[0]["filename"]
    with tarfile.open(tarball) as archive:
        names = sorted(archive.getnames())
    assert names == [
        "package/README.md",
        "package/package.json",
        "package/src/chatkeep.d.ts",
        "package/src/chatkeep.js",
    ]
    manifest = json.loads((CLIENT / "package.json").read_text())
    assert not manifest.get("dependencies"), "the client has no runtime dependencies"

    app = tmp_path / "app"
    app.mkdir()
    app_manifest = {"name": "app", "private": True, "type": "module"}
    (app / "package.json").write_text(json.dumps(app_manifest))
    run([NPM or "npm", "install", "--offline", "--no-audit", "--no-fund", str(tarball)], cwd=app)
    (app / "main.js").write_text(
        "import { Chatkeep, NotFound, ext, isVisitorId } from '@chatkeep/client';\n"
        "const ck = new Chatkeep({ baseUrl: 'http://localhost:8000', visitor: true });\n"
        "if (!isVisitorId(ck.sessionId) || ext('a') !== 'ext:a') process.exit(1);\n"
        "if (!(new NotFound('x', { status: 404 }) instanceof Error)) process.exit(1);\n"
        "console.log('imported', typeof ck.messages.append);\n"
    )
    assert "imported function" in run([NODE or "node", "main.js"], cwd=app)
    installed = app / "node_modules" / "@chatkeep" / "client"
    assert (installed / "src" / "chatkeep.d.ts").is_file()


async def test_browsers_may_send_what_the_client_sends(database_url: str) -> None:
    """A page on another origin sends the client's headers after a CORS preflight: the
    credentials, If-Match (conditional writes), Last-Event-ID (resuming a stream), Range."""
    origin = "https://app.example"
    settings = make_settings(database_url, allow_anonymous="true", cors_origins=origin)
    async with AsyncTestClient(app=create_app(settings)) as client:
        preflight = await client.options(
            "/v1/conversations/00000000-0000-0000-0000-000000000000",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type, if-match, "
                "last-event-id, range, x-session-id",
            },
        )
    assert preflight.status_code in (200, 204), preflight.text
    allowed = preflight.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "if-match", "last-event-id", "range", "x-session-id"):
        assert header in allowed, allowed
