"""The browser pages chatkeep serves: the operator console (/console) and the demo chat (/demo).
Each is a static HTML page with its script module and style sheet from service/web/<page>/,
the files both use from service/web/common/, and the JavaScript client
(clients/js/src/chatkeep.js). Every answer carries a Content Security Policy that allows only
these files as scripts and styles and only chatkeep as the place to connect to, so text that
gets into a page can never run as script."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from litestar import Controller, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

# The ``service`` package: service/api/pages.py -> service/
PACKAGE_DIR = Path(__file__).resolve().parent.parent
WEB_DIR = PACKAGE_DIR / "web"
# Inside the package when installed from a wheel (pyproject's force-include), in the
# repository's clients/js/ when running from a checkout.
CLIENT_FILES = (WEB_DIR / "chatkeep.js", PACKAGE_DIR.parent / "clients/js/src/chatkeep.js")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the service's version; a browser checks before reusing one.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str

    def response(self) -> Response[bytes]:
        return Response(self.body, media_type=self.media_type, headers=HEADERS)


def _read(path: Path) -> Asset:
    return Asset(path.read_bytes(), MEDIA_TYPES[path.suffix])


def client_asset() -> Asset | None:
    """The JavaScript client, when this installation has it."""
    found = next((path for path in CLIENT_FILES if path.is_file()), None)
    return _read(found) if found else None


def page_assets(page: str) -> dict[str, Asset]:
    """``page``'s files by the name they are served under, read once (at start-up)."""
    folders = (WEB_DIR / "common", WEB_DIR / page)
    assets = {path.name: _read(path) for folder in folders for path in sorted(folder.iterdir())}
    if client := client_asset():
        assets["chatkeep.js"] = client
    return assets


def page_controller(page: str) -> type[Controller]:
    """A controller serving ``/{page}`` (its index.html) and ``/{page}/{file}``."""
    assets = page_assets(page)

    class PageController(Controller):
        path = f"/{page}"
        include_in_schema = False

        @get("/")
        async def index(self) -> Response[bytes]:
            return assets["index.html"].response()

        @get("/{name:str}")
        async def asset(self, name: Annotated[str, PathParameter()]) -> Response[bytes]:
            if name not in assets:
                raise NotFoundException(f"/{page} has no file {name!r}")
            return assets[name].response()

    PageController.__name__ = f"{page.capitalize()}PageController"
    return PageController
