"""One API call described as data (method, path, query, body, how to read the answer), so the
synchronous and the asynchronous clients send the very same requests: each endpoint is written
once, in the ``_endpoints`` modules, and both clients only carry the calls out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
import msgspec

T = TypeVar("T")
P = TypeVar("P")
Item = TypeVar("Item")

EXTERNAL_PREFIX = "ext:"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
# Query values as httpx takes them.
Params = Mapping[str, str | int]
# What one attempt sends as its body: httpx.Client.build_request's keyword arguments
# (``content``, or ``files`` and ``data``), opened anew for every attempt (a file is re-read).
BodyOpener = Callable[[], AbstractContextManager[dict[str, Any]]]
ConversationRef = UUID | str


def ext(external_id: str) -> str:
    """Name a conversation by the application's own id: ``ext("session-42")``."""
    return f"{EXTERNAL_PREFIX}{external_id}"


def segment(value: object, name: str) -> str:
    """A value as one path segment, percent-encoded. The service decodes the path before
    routing, so a ``/`` cannot be sent inside a segment."""
    text = str(value)
    if "/" in text or not text:
        raise ValueError(
            f"{name} {text!r} cannot be named in a URL path: use the conversation's id"
        )
    return quote(text, safe=":@!$&'()*+,;=-._~")


def conversation_path(conversation_id: ConversationRef) -> str:
    return f"/v1/conversations/{segment(conversation_id, 'conversation_id')}"


def if_match_header(if_match: int | str | None) -> dict[str, str]:
    """``if_match=7`` (a version), ``"*"`` (it exists) or an ETag as the service sent it."""
    if if_match is None:
        return {}
    if isinstance(if_match, bool):
        raise TypeError("if_match is a version (int), '*' or an ETag")
    if isinstance(if_match, int):
        return {"If-Match": f'"{if_match}"'}
    return {"If-Match": if_match}


def version_of(response: httpx.Response) -> int:
    """The conversation version a response's ETag carries."""
    return int(response.headers["etag"].strip('"'))


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder(kind: type[T]) -> Callable[[httpx.Response], T]:
    """Reads a JSON answer into ``kind``."""
    found = _decoders.get(kind)
    if found is None:
        found = _decoders[kind] = msgspec.json.Decoder(kind)
    chosen = found

    def decode(response: httpx.Response) -> T:
        value: T = chosen.decode(response.content)
        return value

    return decode


def no_content(response: httpx.Response) -> None:
    return None


def query(**values: str | int | None) -> dict[str, str | int]:
    """The query parameters that have a value."""
    return {name: value for name, value in values.items() if value is not None}


def json_call(
    method: str,
    path: str,
    body: Any,
    decode: Callable[[httpx.Response], T],
    *,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
    idempotent: bool = True,
) -> Call[T]:
    """A call sending ``body`` as JSON (encoded once, sent as it is by every attempt)."""
    encoded = msgspec.json.encode(body)

    def opener() -> AbstractContextManager[dict[str, Any]]:
        return nullcontext({"content": encoded})

    return Call(
        method,
        path,
        decode,
        body=opener,
        headers={"Content-Type": content_type, **(headers or {})},
        idempotent=idempotent,
    )


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: Params | None = None
    body: BodyOpener | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Doing it twice is doing it once: safe to send again after an answer was lost.
    idempotent: bool = True
    # A DELETE sent again after its first answer was lost may find the thing gone (the first
    # attempt deleted it): that 404 is its success.
    gone_is_done: bool = False
    # The body can be produced again (a file object that cannot seek cannot): else no retry.
    resendable: bool = True

    def opened_body(self) -> AbstractContextManager[dict[str, Any]]:
        return self.body() if self.body is not None else nullcontext({})


@dataclass(frozen=True, slots=True)
class Pages(Generic[P, Item]):
    """A listing walked page by page: the first page's call, the call for the page after a
    given page (None after the last), and a page's items."""

    first: Call[P]
    after: Callable[[P], Call[P] | None]
    items: Callable[[P], list[Item]]


def walk(pages: Pages[P, Item], send: Callable[[Call[P]], P]) -> Iterator[Item]:
    call: Call[P] | None = pages.first
    while call is not None:
        page = send(call)
        yield from pages.items(page)
        call = pages.after(page)
