"""schemathesis against the OpenAPI schema: no 500 and no answer that breaks the schema.

Every operation gets a bounded, derandomised number of generated requests, valid and
invalid ones (schemathesis' positive and negative modes), sent in-process to the real app
over the test's rolled-back transaction, with the small city loaded so that reads find
data. (The operations are driven through schemathesis' Python API with hypothesis, one
test per operation; its pytest plugin does not run under this pytest.)
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode, checks
from sqlalchemy import Connection, MetaData

from gridgov.api.app import create_app
from gridgov.layers.registry import Registry
from gridgov.settings import Settings
from tests.small_city import build_small_city

EXAMPLES_PER_OPERATION = 50

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation; building the app touches no database."""
    offline = Settings.model_construct(
        database_url="postgresql+psycopg://x@h/d", secret_key=SecretStr("k" * 48)
    )
    spec = create_app(offline)
    return [
        (method.upper(), path)
        for path, operations in spec.openapi()["paths"].items()
        for method in operations
    ]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_api_conforms_to_its_schema(
    app: FastAPI,
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    auth_headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    build_small_city(connection, metadata, registry)
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @hypothesis.given(case=cases)
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    def exchange(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=auth_headers, checks=CHECKS)

    exchange()
