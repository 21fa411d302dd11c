"""Browser tests: Playwright (pytest-playwright) drives Debian's Chromium against a real
``chatkeep serve`` with the operator console, the demo chat, anonymous visitors and user tokens
switched on.

Playwright's own browser downloads are not used (they are not reachable here): Chromium is the
system's (``chromium`` on PATH, or CHATKEEP_CHROMIUM naming the executable). Without one, every
test here is skipped with a message saying how to get it; ``.ci/run`` installs it, so CI always
runs them. Screenshots go to a temporary directory, or over the README's (docs/screenshots/)
with CHATKEEP_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, Route
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from service.core.principal import ALL_PERMISSIONS
from tests.helpers import JWT_SECRET, create_key

# The hooks choose the PostgreSQL server; they run once however many conftests carry them.
from tests.integration.conftest import migrate_template, pytest_configure, pytest_unconfigure
from tests.live import live_service

__all__ = ["pytest_configure", "pytest_unconfigure"]

REPOSITORY = Path(__file__).resolve().parents[2]
COMMITTED_SCREENSHOTS = REPOSITORY / "docs" / "screenshots"
SERVER_SETTINGS = {
    "jwt_secret": JWT_SECRET,
    "allow_anonymous": "true",
    "console": "true",
    "demo": "true",
    # One visitor's tab streams and chats for a whole session of tests.
    "requests_per_minute": "0",
    "failed_auth_per_minute": "0",
}

browser_postgresql_server = factories.postgresql_noproc(
    dbname="chatkeep_browser_tests", load=[migrate_template]
)


def chromium_executable() -> str | None:
    return os.environ.get("CHATKEEP_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chromium_executable():
        return
    skip = pytest.mark.skip(
        reason="browser tests need Chromium: `apt-get install chromium` (Debian), or set "
        "CHATKEEP_CHROMIUM to a Chromium executable; Playwright's own download is not used"
    )
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, with the system's Chromium; as root Chromium
    refuses to start without --no-sandbox."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return {**browser_type_launch_args, "executable_path": chromium_executable(), "args": args}


@dataclass(frozen=True)
class Server:
    base_url: str
    api_key: str

    def api(self) -> httpx.Client:
        """A trusted back end's client, to arrange and check what the pages show."""
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.api_key}"}
        )


@pytest.fixture(scope="session")
def server(browser_postgresql_server: NoopExecutor) -> Iterator[Server]:
    """One real server for the session on a database of its own; tests use ids of their own."""
    pg = browser_postgresql_server
    janitor = DatabaseJanitor(
        user=pg.user,
        host=pg.host,
        port=pg.port,
        dbname=f"chatkeep_browser_{uuid.uuid4().hex[:8]}",
        template_dbname=pg.template_dbname,
        maintenance_dbname=pg.maintenance_dbname,
        password=pg.password,
    )
    password = f":{quote(pg.password, safe='')}" if pg.password else ""
    database_url = f"postgresql://{pg.user}{password}@{pg.host}:{pg.port}/{janitor.dbname}"
    with janitor:
        # In a thread of its own: Playwright's sync API runs an event loop in this one.
        with ThreadPoolExecutor(1) as thread:
            api_key = thread.submit(asyncio.run, create_key(database_url, ALL_PERMISSIONS)).result()
        with live_service(database_url, **SERVER_SETTINGS) as (base_url, _):
            yield Server(base_url, api_key)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.api() as client:
        yield client


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: the committed ones are replaced only when asked to."""
    if os.environ.get("CHATKEEP_UPDATE_SCREENSHOTS") == "1":
        COMMITTED_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return COMMITTED_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def user() -> str:
    """A user id of this test's own (the server is shared by the session)."""
    return f"user-{uuid.uuid4().hex[:10]}"


def hold_requests(page: Page, url: str | Callable[[str], bool]) -> Callable[[], Route]:
    """Hold the page's requests to ``url`` unanswered; the function returned waits for the next
    one held and hands it over (to continue, fetch or fulfill)."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route(url, hold)

    def next_held() -> Route:
        for _ in range(500):  # 10 s: a request that never comes fails the test, never hangs it
            if held:
                return held.pop(0)
            page.wait_for_timeout(20)
        raise AssertionError(f"no request to {url} was made")

    return next_held
