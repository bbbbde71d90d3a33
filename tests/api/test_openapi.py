from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute


async def _schema(anonymous: httpx.AsyncClient) -> dict[str, Any]:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


async def test_openapi_lists_every_route_and_method(
    app: FastAPI, anonymous: httpx.AsyncClient
) -> None:
    paths = (await _schema(anonymous))["paths"]
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                assert method.lower() in paths.get(route.path, {}), (method, route.path)


async def test_error_responses_are_documented_as_the_error_shape(
    anonymous: httpx.AsyncClient,
) -> None:
    schema = await _schema(anonymous)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorResponse", (method, path, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


async def test_agent_schema_is_camel_case(anonymous: httpx.AsyncClient) -> None:
    agent = (await _schema(anonymous))["components"]["schemas"]["Agent"]
    assert {"id", "workspaceId", "systemPrompt", "firstMessage", "turnTaking"} <= set(
        agent["properties"]
    )
    assert "system_prompt" not in agent["properties"]


async def test_agent_and_instance_operations_document_bearer_auth(
    anonymous: httpx.AsyncClient,
) -> None:
    schema = await _schema(anonymous)
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        if path.startswith(("/v1/agents", "/v1/instances")):
            for operation in operations.values():
                assert operation["security"] == [{"HTTPBearer": []}], path


async def test_docs_page_is_served(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


async def test_every_json_body_may_be_400_and_every_body_413(
    anonymous: httpx.AsyncClient,
) -> None:
    schema = await _schema(anonymous)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                assert "400" in operation["responses"], (method, path)
            assert "413" in operation["responses"], (method, path)


async def test_cursors_and_secret_values_state_their_rules(anonymous: httpx.AsyncClient) -> None:
    schema = await _schema(anonymous)
    for path in ("/v1/agents", "/v1/instances", "/v1/sessions", "/v1/secrets"):
        (after,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "after"]
        assert after["schema"]["pattern"].startswith("^"), path
    value = schema["components"]["schemas"]["SecretValue"]["properties"]["value"]
    assert value["minLength"] == 1
    assert "pattern" in value


async def test_union_members_require_their_tag(anonymous: httpx.AsyncClient) -> None:
    schemas = (await _schema(anonymous))["components"]["schemas"]
    assert "provider" in schemas["WhisperStt"]["required"]
    assert "provider" in schemas["OpenAiLlm"]["required"]
    assert "type" in schemas["EndCallTool"]["required"]
