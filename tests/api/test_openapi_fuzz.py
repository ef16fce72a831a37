"""Schemathesis against the real service, from the service's own OpenAPI document: for every
operation, schema-valid and schema-invalid requests, on SQLite and on PostgreSQL. Bounded: a fixed
number of derandomized examples per operation (about 20 s a database on two cores).

Checks: no 5xx; every status, content type, header and body as the document says; a request the
schema allows is never refused for its form (400), only for what the schema cannot say (an unknown
poll, a signature, a closed poll, a poll's text: 404, 409, 410, 422); a request the schema refuses
is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.serialization import encode_json
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from app import create_app
from app.core.settings import Settings
from tests.conftest import PG_URL_ENV, _backends, _fresh_pg_database
from tests.service_process import ServiceProcess

EXAMPLES_PER_OPERATION = 100
# Answers to a schema-valid request that depend on state or meaning the schema cannot carry.
SEMANTIC_STATUSES = ["2xx", "3xx", "401", "404", "409", "410", "422", "503"]
# The fuzzer sends faster than one client may vote (a burst of 50 requests a second): limits off,
# so that every request reaches the rules it is meant to test. tests/test_rate_limits.py tests them.
UNLIMITED = {"VOTE_RATE_LIMIT_PER_CLIENT": "0"}
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": SEMANTIC_STATUSES}}}
)


def _cases() -> list[tuple[str, GenerationMode]]:
    """Each operation, from the app built without starting it (the tests use the served document),
    with schema-valid requests, and with schema-invalid ones where it takes any input."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", data_dir=Path("/nonexistent")))
    document = json.loads(encode_json(app.openapi_schema.to_schema()))
    cases = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()
        cases.append((operation.label, GenerationMode.POSITIVE))
        if any(map(len, (operation.path_parameters, operation.headers, operation.query, operation.body))):
            cases.append((operation.label, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module", params=_backends())
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir = tmp_path_factory.mktemp("openapi") / "service"
    if request.param == "sqlite":
        with ServiceProcess(data_dir, env=UNLIMITED) as process:
            yield process
        return
    for database_url in _fresh_pg_database(os.environ[PG_URL_ENV]):
        with ServiceProcess(data_dir, database_url=database_url, env=UNLIMITED) as process:
            yield process


@pytest.fixture(scope="module")
def served_schema(service: ServiceProcess) -> Any:
    return schemathesis.openapi.from_url(f"{service.base_url}/schema/openapi.json", config=CONFIG)


def _integers_as_integers(case: Any) -> Any:
    """JSON Schema's `integer` admits 2314.0; the wire format (docs/protocol.md) writes integers
    without a fraction and refuses the rest, so schema-valid examples are written that way."""
    if case.meta.generation.mode.is_positive:
        case.body = _without_integral_floats(case.body)
    return case


def _without_integral_floats(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _without_integral_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_integral_floats(item) for item in value]
    return value


def _consistent_vote(case: Any) -> Any:
    """A schema-valid vote whose header and URL name its own key and poll: the one rule across
    fields that the document states in words only (docs/protocol.md)."""
    body = case.body
    if case.meta.generation.mode.is_positive and isinstance(body, dict):
        if isinstance(body.get("idempotency_key"), str) and case.headers and "Idempotency-Key" in case.headers:
            case.headers["Idempotency-Key"] = f'"{body["idempotency_key"]}"'
        if isinstance(body.get("poll_id"), str) and case.path_parameters:
            case.path_parameters["poll_id"] = body["poll_id"]
    return case


@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda value: str(value))
def test_every_operation_answers_as_documented(
    label: str, mode: GenerationMode, service: ServiceProcess, served_schema: Any
) -> None:
    strategy = served_schema.find_operation_by_label(label).as_strategy(mode).map(_integers_as_integers)
    if label == "POST /api/v1/polls/{poll_id}/votes":
        strategy = strategy.map(_consistent_vote)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=service.base_url, headers=service.admin_headers())

    check()
