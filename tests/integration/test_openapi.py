"""The OpenAPI document says what the service does: the limits its settings give, the bodies it
refuses, every status it answers with, the credentials it accepts; and Allow on 405 and OPTIONS.
(tests/integration/test_fuzz.py holds the running service to the document as a whole.)"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.integration.conftest import Client, make_settings

LISTINGS = [
    "/v1/conversations",
    "/v1/conversations/{conversation_id}/messages",
    "/v1/conversations/{conversation_id}/files",
    "/v1/prompts",
    "/v1/prompts/{name}/versions",
]


async def document(database_url: str, **settings: str) -> dict[str, Any]:
    async with AsyncTestClient(app=create_app(make_settings(database_url, **settings))) as client:
        response = await client.get("/schema/openapi.json")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in operation["parameters"] if p["name"] == name)
    return found


async def test_limits_are_the_settings(database_url: str) -> None:
    doc = await document(
        database_url,
        max_page="200",
        default_page="20",
        max_batch="7",
        max_content_bytes="1000",
        max_metadata_bytes="2000",
    )
    for path in LISTINGS:
        limit = parameter(doc["paths"][path]["get"], "limit")["schema"]
        assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 20), path
    history = doc["paths"]["/v1/conversations/{conversation_id}/messages"]["get"]
    for name in ("before", "after"):
        seq = parameter(history, name)["schema"]
        assert (seq["minimum"], seq["maximum"]) == (0, 2**63 - 1)
    schemas = doc["components"]["schemas"]
    assert schemas["MessageBatch"]["properties"]["messages"]["maxItems"] == 7
    for body in ("NewMessage", "PromptPut"):
        content = schemas[body]["properties"]["content"]
        # Bytes of UTF-8 are at least as many as characters: maxLength is a bound every
        # accepted text meets, and the description gives the limit itself.
        assert content["maxLength"] == 1000
        assert "1000 bytes" in content["description"]
        assert "2000 bytes" in schemas[body]["properties"]["metadata"]["description"]


async def test_bodies_refuse_unknown_fields_and_nul(client: Client) -> None:
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    bodies = ["ConversationCreate", "ConversationPatch", "NewMessage", "MessageBatch"]
    bodies += ["MessagePatch", "PromptPut", "Claim"]
    for name in bodies:
        assert schemas[name]["additionalProperties"] is False, name
    title = schemas["ConversationCreate"]["properties"]["title"]["oneOf"][0]
    assert title["pattern"] == "^[^\\u0000]*$"
    assert schemas["Claim"]["properties"]["session_id"]["pattern"].startswith("^[A-Za-z0-9")
    response = await client.post("/v1/conversations", json={"title": "x", "unknown": 1})
    assert response.status_code == 422


async def test_idempotent_writes_document_their_200(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for operation, schema in (
        (paths["/v1/conversations"]["post"], "Conversation"),
        (paths["/v1/prompts/{name}"]["put"], "PromptVersion"),
    ):
        for status in ("200", "201"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": f"#/components/schemas/{schema}"}
    body = {"id": str(uuid.uuid4()), "title": "again"}
    first = await client.post("/v1/conversations", json=body)
    again = await client.post("/v1/conversations", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    ready = paths["/health/ready"]["get"]["responses"]
    assert ready["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")


async def test_security_is_what_the_settings_accept(database_url: str) -> None:
    keys_only = await document(database_url)
    assert set(keys_only["components"]["securitySchemes"]) == {"bearer"}
    assert keys_only["paths"]["/v1/conversations"]["get"]["security"] == [{"bearer": []}]
    local = await document(database_url, insecure_no_auth="true")
    assert local["paths"]["/v1/conversations"]["get"]["security"] == [{"bearer": []}, {}]


async def test_405_and_options_list_the_allowed_methods(client: Client) -> None:
    one = f"/v1/conversations/{uuid.uuid4()}"
    refused = await client.request("TRACE", one)
    assert refused.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"DELETE", "GET", "OPTIONS", "PATCH"}
    for path, methods in (
        ("/v1/conversations", {"DELETE", "GET", "OPTIONS", "POST"}),
        (one, {"DELETE", "GET", "OPTIONS", "PATCH"}),
        (f"{one}/messages", {"DELETE", "GET", "OPTIONS", "POST"}),
        ("/v1/prompts/p", {"DELETE", "GET", "OPTIONS", "PUT"}),
    ):
        options = await client.options(path)
        assert options.status_code == 204
        assert set(options.headers["allow"].split(", ")) == methods, path
