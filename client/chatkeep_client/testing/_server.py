"""The fake's HTTP face: an httpx transport handler that answers the API's requests from the
in-memory State, with the service's status codes, headers and problem documents. The clients
talk to it through their ordinary code (encoding, errors, retries, paging), so a test of an
application against the fake exercises everything but the network."""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from uuid import UUID

import httpx
import msgspec

from chatkeep_client.testing import _inputs as inputs
from chatkeep_client.testing._problems import Problem, invalid, unauthorized
from chatkeep_client.testing._records import Account, Caller, file_view
from chatkeep_client.testing._rules import SESSION_ID, parse_if_match, parse_ref, visitor_key
from chatkeep_client.testing._state import State

KEY_PREFIX = "ck_"
TOKEN_SECONDS = 3600
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class Request:
    """One request as the handlers see it: who, the path's named parts, query and body."""

    http: httpx.Request
    caller: Caller
    parts: dict[str, str]

    def query(self, name: str) -> str | None:
        value: str | None = self.http.url.params.get(name)
        return value

    def integer(self, name: str) -> int | None:
        value = self.query(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise invalid(f"{name} must be an integer", name) from None

    def ref(self) -> UUID | str:
        return parse_ref(self.parts["conversation"])

    def uuid(self, name: str) -> UUID:
        try:
            return UUID(self.parts[name])
        except ValueError:
            raise invalid(f"{name} must be a UUID", name) from None

    def body(self, kind: type[inputs.T]) -> inputs.T:
        return inputs.decode(self.http.content, kind)

    def versions(self) -> frozenset[int] | str | None:
        return parse_if_match(self.http.headers.get("if-match"))


Handler = Callable[["FakeServer", Request], httpx.Response]


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=msgspec.json.encode(value),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _conversation(value: Any, status: int = 200) -> httpx.Response:
    return _json(value, status, _etag(value.version))


def _no_content() -> httpx.Response:
    return httpx.Response(204)


def _user_of_token(token: str) -> str:
    """The user a token names. The fake checks neither signature nor audience (it has no
    secret): any JWT with a ``sub`` and an ``exp`` to come is that user."""
    try:
        payload = token.split(".")[1]
        claims = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, msgspec.DecodeError):
        raise unauthorized("malformed user token") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        raise unauthorized("the user token names no user (sub)")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires < time.time():
        raise unauthorized("the user token has expired")
    return str(claims["sub"])


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


def fake_token(user_id: str, seconds: int = TOKEN_SECONDS) -> str:
    """A token the fake takes as ``user_id``'s (unsigned: only the fake accepts it)."""
    claims = {"sub": user_id, "exp": int(time.time()) + seconds}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.fake"


def identify(request: httpx.Request) -> Caller:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise unauthorized("expected Authorization: Bearer <API key or user token>")
        if credentials.startswith(KEY_PREFIX):
            return Caller("key")
        return Caller("user", user_id=_user_of_token(credentials))
    session_id = request.headers.get("x-session-id")
    if session_id is not None:
        if not SESSION_ID.fullmatch(session_id):
            raise unauthorized(
                "X-Session-ID must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ : -", "X-Session-ID"
            )
        return Caller("visitor", visitor=visitor_key(session_id))
    raise unauthorized(
        "credentials required: Authorization: Bearer <API key or user token> or X-Session-ID"
    )


# --- handlers ----------------------------------------------------------------------------------


def create_conversation(server: FakeServer, request: Request) -> httpx.Response:
    created, new = server.state.create(request.caller, request.body(inputs.ConversationCreate))
    return _conversation(created, 201 if new else 200)


def list_conversations(server: FakeServer, request: Request) -> httpx.Response:
    return _json(
        server.state.list_page(
            request.caller,
            user_id=request.query("user_id"),
            metadata=request.query("metadata"),
            sort=request.query("sort") or "updated_at",
            limit=request.integer("limit"),
            cursor=request.query("cursor"),
        )
    )


def count_conversations(server: FakeServer, request: Request) -> httpx.Response:
    count = server.state.count(
        request.caller, user_id=request.query("user_id"), metadata=request.query("metadata")
    )
    return _json({"count": count})


def delete_conversations(server: FakeServer, request: Request) -> httpx.Response:
    return _json(
        server.state.erase_matching(
            request.caller,
            user_id=request.query("user_id"),
            metadata=request.query("metadata"),
            updated_before=request.query("updated_before"),
            confirm=request.query("confirm"),
        )
    )


def get_conversation(server: FakeServer, request: Request) -> httpx.Response:
    return _conversation(server.state.get(request.caller, request.ref()))


def patch_conversation(server: FakeServer, request: Request) -> httpx.Response:
    media_type = request.http.headers.get("content-type", "").partition(";")[0].strip().lower()
    ref, versions = request.ref(), request.versions()
    patch = request.body(inputs.ConversationPatch)
    updated = server.state.update(
        request.caller, ref, patch, merge=media_type == MERGE_PATCH, versions=versions
    )
    return _conversation(updated)


def delete_conversation(server: FakeServer, request: Request) -> httpx.Response:
    server.state.delete(request.caller, request.ref(), request.versions())
    return _no_content()


def append_messages(server: FakeServer, request: Request) -> httpx.Response:
    ref, versions = request.ref(), request.versions()
    batch = request.body(inputs.MessageBatch)
    stored, version = server.state.append(request.caller, ref, batch, versions)
    return _json({"items": stored}, 201, _etag(version))


def list_messages(server: FakeServer, request: Request) -> httpx.Response:
    return _json(
        server.state.page(
            request.caller,
            request.ref(),
            limit=request.integer("limit"),
            before=request.integer("before"),
            after=request.integer("after"),
            order=request.query("order") or "asc",
            topic=request.query("topic"),
        )
    )


def clear_messages(server: FakeServer, request: Request) -> httpx.Response:
    deleted = server.state.clear(request.caller, request.ref(), request.query("topic"))
    return _json({"deleted": deleted})


def get_message(server: FakeServer, request: Request) -> httpx.Response:
    ref = request.ref()
    return _json(server.state.get_message(request.caller, ref, request.uuid("message")))


def patch_message(server: FakeServer, request: Request) -> httpx.Response:
    ref, message_id = request.ref(), request.uuid("message")
    patch = request.body(inputs.MessagePatch)
    return _json(server.state.update_message(request.caller, ref, message_id, patch))


def delete_message(server: FakeServer, request: Request) -> httpx.Response:
    ref = request.ref()
    server.state.delete_message(request.caller, ref, request.uuid("message"))
    return _no_content()


@dataclass
class _Upload:
    filename: str | None
    content_type: str
    data: bytes
    metadata: dict[str, Any]
    user_id: str | None


def _form(body: bytes, content_type: str) -> _Upload:
    """A multipart/form-data upload: the ``file`` part and the ``metadata`` and ``user_id``
    fields."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str):
        raise invalid("multipart without a boundary", "body")
    upload = _Upload(None, DEFAULT_CONTENT_TYPE, b"", {}, None)
    seen_file = False
    for section in body.split(b"--" + boundary.encode())[1:-1]:
        head, _, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        part = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        data = data.removesuffix(b"\r\n")
        if name == "file":
            seen_file = True
            upload.filename = part.get_filename()
            upload.content_type = (
                part.get_content_type() if part["Content-Type"] else DEFAULT_CONTENT_TYPE
            )
            upload.data = data
        elif name == "metadata":
            try:
                metadata = msgspec.json.decode(data)
            except msgspec.DecodeError:
                raise invalid("not JSON", "metadata") from None
            if not isinstance(metadata, dict):
                raise invalid("must be a JSON object", "metadata")
            upload.metadata = metadata
        elif name == "user_id":
            upload.user_id = data.decode()
        else:
            raise invalid(f"unexpected form field {name!r}; send the file as 'file'", str(name))
    if not seen_file:
        raise invalid("the form has no 'file' part", "file")
    return upload


def _clean_filename(name: str | None) -> str:
    last = re.split(r"[/\\]", name or "")[-1]
    if not last.strip() or len(last) > 255 or re.search(r"[\x00-\x1f\x7f]", last):
        raise invalid("a file name: at most 255 characters, no control characters", "filename")
    return last


def upload_file(server: FakeServer, request: Request) -> httpx.Response:
    content_type = request.http.headers.get("content-type", DEFAULT_CONTENT_TYPE)
    file_id = request.query("file_id")
    try:
        chosen_id = None if file_id is None else UUID(file_id)
    except ValueError:
        raise invalid("file_id must be a UUID", "file_id") from None
    if content_type.lower().startswith("multipart/form-data"):
        upload = _form(request.http.content, content_type)
    else:
        upload = _Upload(request.query("filename"), content_type, request.http.content, {}, None)
    stored, new = server.state.upload(
        request.caller,
        request.ref(),
        file_id=chosen_id,
        filename=_clean_filename(upload.filename),
        content_type=upload.content_type,
        data=upload.data,
        metadata=upload.metadata,
        user_id=upload.user_id,
    )
    return _json(stored, 201 if new else 200)


def list_files(server: FakeServer, request: Request) -> httpx.Response:
    return _json(
        server.state.files_page(
            request.caller,
            request.ref(),
            limit=request.integer("limit"),
            cursor=request.query("cursor"),
        )
    )


def get_file(server: FakeServer, request: Request) -> httpx.Response:
    conversation, stored = server.state.file(request.caller, request.ref(), request.uuid("file"))
    return _json(file_view(conversation, stored))


def patch_file(server: FakeServer, request: Request) -> httpx.Response:
    ref, file_id = request.ref(), request.uuid("file")
    body = request.body(inputs.FilePatch)
    return _json(server.state.set_file_metadata(request.caller, ref, file_id, body.metadata))


def download_file(server: FakeServer, request: Request) -> httpx.Response:
    _, stored = server.state.file(request.caller, request.ref(), request.uuid("file"))
    return httpx.Response(
        200,
        content=stored.data,
        headers={
            "Content-Type": stored.content_type,
            "ETag": f'"{stored.sha256}"',
            "Content-Disposition": f"attachment; filename*=UTF-8''{stored.filename}",
        },
    )


def delete_file(server: FakeServer, request: Request) -> httpx.Response:
    server.state.delete_file(request.caller, request.ref(), request.uuid("file"))
    return _no_content()


def put_prompt(server: FakeServer, request: Request) -> httpx.Response:
    name = request.parts["name"]
    version, new = server.state.put_prompt(request.caller, name, request.body(inputs.PromptPut))
    return _json(version, 201 if new else 200)


def get_prompt(server: FakeServer, request: Request) -> httpx.Response:
    name = request.parts["name"]
    return _json(server.state.get_prompt(request.caller, name, request.integer("version")))


def prompt_versions(server: FakeServer, request: Request) -> httpx.Response:
    return _json(
        server.state.prompt_versions(
            request.caller,
            request.parts["name"],
            limit=request.integer("limit"),
            before=request.integer("before"),
        )
    )


def list_prompts(server: FakeServer, request: Request) -> httpx.Response:
    return _json(
        server.state.prompts_page(
            request.caller, limit=request.integer("limit"), after=request.query("after")
        )
    )


def retire_prompt(server: FakeServer, request: Request) -> httpx.Response:
    server.state.retire_prompt(request.caller, request.parts["name"])
    return _no_content()


def claim(server: FakeServer, request: Request) -> httpx.Response:
    body = request.body(inputs.Claim)
    claimed = server.state.claim(request.caller, request.parts["user"], body.session_id)
    return _json({"claimed": claimed})


def erase_user(server: FakeServer, request: Request) -> httpx.Response:
    return _json(server.state.erase_user(request.caller, request.parts["user"]))


# (method, path pattern, handler); a path's segments are decoded before they are matched.
CONVERSATION = r"(?P<conversation>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(f"^/v1/{pattern}$"), handler)
    for method, pattern, handler in [
        ("POST", "conversations", create_conversation),
        ("GET", "conversations", list_conversations),
        ("DELETE", "conversations", delete_conversations),
        ("GET", "conversations/count", count_conversations),
        ("GET", f"conversations/{CONVERSATION}", get_conversation),
        ("PATCH", f"conversations/{CONVERSATION}", patch_conversation),
        ("DELETE", f"conversations/{CONVERSATION}", delete_conversation),
        ("POST", f"conversations/{CONVERSATION}/messages", append_messages),
        ("GET", f"conversations/{CONVERSATION}/messages", list_messages),
        ("DELETE", f"conversations/{CONVERSATION}/messages", clear_messages),
        ("GET", f"conversations/{CONVERSATION}/messages/(?P<message>[^/]+)", get_message),
        ("PATCH", f"conversations/{CONVERSATION}/messages/(?P<message>[^/]+)", patch_message),
        ("DELETE", f"conversations/{CONVERSATION}/messages/(?P<message>[^/]+)", delete_message),
        ("POST", f"conversations/{CONVERSATION}/files", upload_file),
        ("GET", f"conversations/{CONVERSATION}/files", list_files),
        ("GET", f"conversations/{CONVERSATION}/files/(?P<file>[^/]+)", get_file),
        ("PATCH", f"conversations/{CONVERSATION}/files/(?P<file>[^/]+)", patch_file),
        ("DELETE", f"conversations/{CONVERSATION}/files/(?P<file>[^/]+)", delete_file),
        ("GET", f"conversations/{CONVERSATION}/files/(?P<file>[^/]+)/content", download_file),
        ("PUT", "prompts/(?P<name>[^/]+)", put_prompt),
        ("GET", "prompts/(?P<name>[^/]+)", get_prompt),
        ("DELETE", "prompts/(?P<name>[^/]+)", retire_prompt),
        ("GET", "prompts/(?P<name>[^/]+)/versions", prompt_versions),
        ("GET", "prompts", list_prompts),
        ("POST", "users/(?P<user>[^/]+)/claim", claim),
        ("DELETE", "users/(?P<user>[^/]+)", erase_user),
    ]
]


class FakeServer:
    """The in-memory service. One server can back any number of clients, sync and async, as
    one deployment backs an application's many connections."""

    def __init__(self) -> None:
        self.state = State()

    def add_account(self, username: str, password: str, user_id: str | None = None) -> None:
        """An account for ``client.auth.token(username, password)`` (``chatkeep users create``)."""
        self.state.accounts[username] = Account(password, user_id or username)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """The answer to one request (an httpx.MockTransport handler)."""
        try:
            return self._route(request)
        except Problem as problem:
            return problem.response()

    def _route(self, request: httpx.Request) -> httpx.Response:
        # Segments decoded one by one: an encoded "/" stays inside its segment.
        raw = request.url.raw_path.decode("ascii").partition("?")[0]
        path = "/".join(unquote(segment).replace("/", "%2F") for segment in raw.split("/"))
        if request.method == "POST" and path == "/v1/auth/token":
            return self._token(request)
        allowed = False
        for method, pattern, handler in ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                parts = {name: value for name, value in match.groupdict().items()}
                return handler(self, Request(request, identify(request), parts))
        if allowed:
            raise Problem(405, f"{request.method} is not allowed here")
        raise Problem(404, f"no route for {path}")

    def _token(self, request: httpx.Request) -> httpx.Response:
        login = inputs.decode(request.content, inputs.TokenRequest)
        user_id = self.state.log_in(login.username, login.password)
        return _json(
            {
                "access_token": fake_token(user_id),
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "user_id": user_id,
            },
            headers={"Cache-Control": "no-store"},
        )
