"""The API keeps the promises of its own OpenAPI schema: schemathesis sends generated requests
to every operation of the ASGI app (on SQLite) and checks that none is a 5xx and that each
answer's status, headers and body are the ones the schema declares.

Bounded and deterministic: a fixed number of derandomized examples per operation. Host names
in generated agent URLs resolve nowhere (the egress policy's lookup is replaced), so nothing
leaves the process.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import make_settings
from voxline.api.app import create_app
from voxline.security import egress
from voxline.store.api_keys import create_api_key
from voxline.store.database import Database
from voxline.store.migrate import upgrade
from voxline.store.workspaces import create_workspace

EXAMPLES_PER_OPERATION = 12
# No 5xx, and every answer as declared: status, content type, headers and body.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Where the schema states every rule of the input, whatever it allows must be accepted too.
FULLY_DESCRIBED = ("GET", "DELETE")


@dataclass(frozen=True)
class Api:
    app: FastAPI
    key: str


async def _workspace_key(database_url: str) -> str:
    database = Database(database_url)
    try:
        await upgrade(database)
        async with database.transaction() as db:
            workspace = await create_workspace(db, f"schema-{uuid.uuid4().hex[:8]}")
            key = await create_api_key(db, workspace.id)
            return key.secret
    finally:
        await database.dispose()


async def _nowhere(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    database_url = f"sqlite+aiosqlite:///{data_dir / 'voxline.db'}"
    key = asyncio.run(_workspace_key(database_url))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(egress, "lookup", _nowhere)
        yield Api(create_app(make_settings(database_url, data_dir)), key)
        asgi.shutdown_lifespans()


def _first_lines(exc: BaseException) -> str:
    return "\n".join(str(exc).splitlines()[:14])


def _check(operation: Any, headers: dict[str, str]) -> None:
    checks = list(CHECKS)
    if operation.method.upper() in FULLY_DESCRIBED or operation.label.startswith("PUT "):
        checks.append(positive_data_acceptance)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    conforms()


def test_every_operation_answers_as_its_schema_says(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    headers = {"Authorization": f"Bearer {api.key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    for operation in operations:
        try:
            _check(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {_first_lines(exc)}")
    assert not failures, "\n\n".join(failures)
