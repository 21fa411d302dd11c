"""The OpenAPI document: the error responses every /v1 operation documents (RFC 9457 problem
documents), and what Litestar cannot derive from the handlers' types.

Some rules are enforced by the service's own checks rather than by the types Litestar reads:
limits that are settings, NUL refused in stored text, unknown body fields refused. ``complete``
writes them into the generated document, so a client generated from it is right for this
deployment's settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from litestar import Request
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    SwaggerRenderPlugin,
)
from msgspec import Struct

from service.api.consistency import document_tokens
from service.core import schemas, visitors
from service.core.attachments import FILENAME_PATTERN
from service.core.settings import Settings
from service.core.validation import MAX_METADATA_DEPTH

PROBLEM_MEDIA_TYPE = "application/problem+json"
# PostgreSQL cannot store NUL (U+0000); the service refuses it in every string it is given.
NO_NUL = "^[^\\u0000]*$"


class Problem(Struct, kw_only=True):
    status: int
    title: str
    detail: str
    # The request field at fault, as a JSON path (e.g. messages[3].content) or a header name.
    field: str | None = None


def problem_response(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem, description=description, media_type=PROBLEM_MEDIA_TYPE
    )


PROBLEM_RESPONSES = {
    400: problem_response("Malformed request (e.g. a body that is not JSON)"),
    401: problem_response("No usable credentials"),
    403: problem_response("Not allowed for these credentials"),
    404: problem_response("No such conversation or message (or not the caller's)"),
    409: problem_response("Conflicts with what is stored"),
    413: problem_response("Over a configured size limit or quota"),
    422: problem_response("Invalid input; `field` names it"),
    429: problem_response("Too many requests, or failed authentications; retry after Retry-After"),
    503: problem_response("Database unavailable or busy; retry after Retry-After seconds"),
}
# A history page's conditional read (README "Conditional and cached reads").
PAGE_RESPONSES = {
    **PROBLEM_RESPONSES,
    304: ResponseSpec(
        data_container=None, description="Not modified: If-None-Match names the current ETag"
    ),
}
PAGE_ETAG = ResponseHeader(
    name="ETag",
    documentation_only=True,
    description="A plain page's weak entity tag (no context window): send it in If-None-Match.",
)


def stored_again(data_container: type[Struct], description: str) -> dict[int, ResponseSpec]:
    """The 200 of an idempotent create: the request repeats what is stored, which is returned."""
    return {200: ResponseSpec(data_container=data_container, description=description)}


# Request bodies: Structs that refuse unknown fields.
REQUEST_BODIES = tuple(
    value
    for value in vars(schemas).values()
    if isinstance(value, type)
    and issubclass(value, Struct)
    and value.__struct_config__.forbid_unknown_fields
)


def _json_value() -> dict[str, Any]:
    """Any JSON value without NUL in its strings and keys (the `metadata` members)."""
    ref = {"$ref": "#/components/schemas/JsonValue"}
    return {
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": ref},
            {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": ref},
        ],
        "description": "Any JSON value; no NUL (\\u0000) in strings or keys.",
    }


def _subschemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield schema
    for key in ("oneOf", "anyOf", "allOf"):
        for option in schema.get(key, []):
            yield from _subschemas(option)


def _refuse_nul(schema: dict[str, Any]) -> None:
    """Free text (strings with no pattern, format or enum of their own) may not hold NUL."""
    for option in _subschemas(schema):
        if option.get("type") == "string" and not {"pattern", "format", "enum"} & option.keys():
            option["pattern"] = NO_NUL


def _metadata(schema: dict[str, Any], settings: Settings) -> None:
    for option in _subschemas(schema):
        if option.get("type") == "object":
            option["propertyNames"] = {"pattern": NO_NUL}
            option["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
    schema["description"] = (
        f"A JSON object of at most {settings.max_metadata_bytes} bytes encoded as JSON (over "
        f"that: 413), nested at most {MAX_METADATA_DEPTH} levels deep."
    )


def _content(schema: dict[str, Any], settings: Settings) -> None:
    # The limit is in UTF-8 bytes, which JSON Schema cannot count: maxLength (characters) is
    # the bound every accepted text meets; text within it but over the bytes is still a 413.
    for option in _subschemas(schema):
        if option.get("type") == "string":
            option["maxLength"] = settings.max_content_bytes
    schema["description"] = (
        f"At most {settings.max_content_bytes} bytes of UTF-8 (over that: 413); no NUL."
    )


def _tokens(schema: dict[str, Any]) -> None:
    # Litestar leaves out a bound of 0 (it tests bounds for truth) and puts the other beside the
    # union: both go on the integer.
    for option in _subschemas(schema):
        if option.get("type") == "integer":
            option.update(minimum=0, maximum=schemas.MAX_TOKENS)
    schema.pop("maximum", None)


def _body_schema(schema: dict[str, Any], body: type[Struct], settings: Settings) -> None:
    schema["additionalProperties"] = False
    for name, member in schema["properties"].items():
        if name == "metadata":
            _metadata(member, settings)
        elif name == "content":
            _content(member, settings)
        elif name == "tokens":
            _tokens(member)
        elif name == "expires_at":
            for option in _subschemas(member):
                if option.get("type") == "string":
                    option["format"] = "date-time"
        _refuse_nul(member)
    if body is schemas.MessageBatch:
        messages = schema["properties"]["messages"]
        messages["maxItems"] = settings.max_batch
        messages["description"] = f"1 to {settings.max_batch} messages (more: 413)."
    if body is schemas.Claim:
        schema["properties"]["session_id"]["pattern"] = f"^{visitors.SESSION_ID.pattern}$"


def _metadata_filter(parameter: dict[str, Any], settings: Settings) -> None:
    """The listings' `metadata` query parameter is a JSON object (sent URL-encoded): described
    as JSON content rather than a string, so generated clients send an object."""
    parameter.pop("schema", None)
    parameter["content"] = {
        "application/json": {
            "schema": {
                "type": "object",
                "propertyNames": {"pattern": NO_NUL},
                "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
                "description": f"A JSON object of at most {settings.max_metadata_bytes} bytes, "
                f"nested at most {MAX_METADATA_DEPTH} levels deep.",
            }
        }
    }


# Writes that honour If-Match, and responses that carry the conversation's version as ETag.
CONVERSATION = "/v1/conversations/{conversation_id}"
CONDITIONAL = (
    (CONVERSATION, "patch"),
    (CONVERSATION, "delete"),
    (f"{CONVERSATION}/messages", "post"),
)
VERSIONED = (*CONDITIONAL, (CONVERSATION, "get"), ("/v1/conversations", "post"))
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'Only if the conversation is at one of these versions (its ETag, e.g. "3"), '
    'or exists at all ("*"); else 412.',
    "schema": {
        "type": "string",
        "pattern": r'^\s*(\*|"[1-9][0-9]{0,18}"(\s*,\s*"[1-9][0-9]{0,18}")*)\s*$',
    },
}
ETAG = {
    "description": "The conversation's version, quoted: send it as If-Match to write only if "
    "nothing changed since.",
    "schema": {"type": "string"},
}


def _conditional(document: dict[str, Any]) -> None:
    """If-Match, 412 and ETag as the conversation handlers treat them, and the merge-patch body
    of PATCH: Litestar derives none of them from the handlers' types."""
    paths = document["paths"]
    for path, method in CONDITIONAL:
        operation = paths[path][method]
        parameters = operation.setdefault("parameters", [])
        if all(parameter["name"] != "If-Match" for parameter in parameters):
            parameters.append(IF_MATCH)
        operation["responses"]["412"] = {
            "description": "The conversation is at another version than If-Match names",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    for path, method in VERSIONED:
        for status, response in paths[path][method]["responses"].items():
            if status.startswith("2") and status != "204":
                response.setdefault("headers", {})["ETag"] = ETAG
    content = paths[CONVERSATION]["patch"]["requestBody"]["content"]
    content["application/merge-patch+json"] = content["application/json"]


UPLOAD = "/v1/conversations/{conversation_id}/files"


def _upload_body(document: dict[str, Any], settings: Settings) -> None:
    """The upload reads its body itself (a stream): its two shapes, for Litestar derives
    neither. The form's `metadata` is a JSON object sent as a text field."""
    metadata = {
        "type": "object",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        "description": f"The file's metadata: a JSON object of at most "
        f"{settings.max_metadata_bytes} bytes (over that: 413), nested at most "
        f"{MAX_METADATA_DEPTH} levels deep; `{{}}` when left out.",
    }
    user_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": NO_NUL,
        "description": "For a key: the user owning the conversation when this upload creates "
        "it (another user than an existing conversation's: 409).",
    }
    form = {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "The file; its name and type come from the part's "
                "Content-Disposition and Content-Type.",
            },
            "metadata": metadata,
            "user_id": user_id,
        },
        "additionalProperties": False,
    }
    document["paths"][UPLOAD]["post"]["requestBody"] = {
        # No body at all is a raw upload of an empty file.
        "required": False,
        "content": {
            "multipart/form-data": {
                "schema": form,
                "encoding": {"metadata": {"contentType": "application/json"}},
            },
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "The file's bytes (any Content-Type: the file's), "
                    "named by `filename`.",
                },
            },
        },
    }


def _parameters(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document["paths"].values():
        for operation in path_item.values():
            yield from operation.get("parameters", [])


def complete(document: dict[str, Any], settings: Settings) -> None:
    """Write the rules the service checks itself into Litestar's document. Idempotent: the
    document is generated once and rendered on every request."""
    components = document["components"]["schemas"]
    components["JsonValue"] = _json_value()
    _conditional(document)
    _upload_body(document, settings)
    if settings.replica_url_list:
        document_tokens(document)
    for body in REQUEST_BODIES:
        if body.__name__ in components:
            _body_schema(components[body.__name__], body, settings)
    for parameter in _parameters(document):
        if parameter["in"] == "query" and parameter["name"] == "metadata":
            _metadata_filter(parameter, settings)
            continue
        schema = parameter["schema"]
        if parameter["name"] == "filename":
            schema["pattern"] = FILENAME_PATTERN
        if parameter["name"] == "limit":
            schema.update(minimum=1, maximum=settings.max_page, default=settings.default_page)
            parameter["description"] = schema["description"] = (
                f"Page size, 1 to {settings.max_page}; {settings.default_page} when left out."
            )
        _refuse_nul(schema)


class _Completing(OpenAPIRenderPlugin):
    """A render plugin that completes the document for these settings before rendering it."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        complete(openapi_schema, self.settings)
        # The concrete plugin's render, next in the subclasses' MRO (not the abstract one).
        return super().render(request, openapi_schema)  # type: ignore[safe-super]


class CompletedJson(_Completing, JsonRenderPlugin):
    """/schema/openapi.json, completed for these settings."""


class CompletedSwagger(_Completing, SwaggerRenderPlugin):
    """/schema/swagger, showing the completed document."""
