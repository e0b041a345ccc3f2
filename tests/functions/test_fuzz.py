"""Schemathesis against the OpenAPI document, over real HTTP: the messages function behind the local
gateway (with its development-token authorizer), as an admin so that every route is reachable.

For every generated request: no 5xx, a status and content type the document declares, a body
that matches its schema, and a refused request (4xx) writes no row. ``FUZZ_EXAMPLES`` sets the
examples per operation (default 90: over 1,000 cases in all), and the total is checked.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from infra.local.dev_tokens import DevTokens
from infra.local.gateway import LocalGateway

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "90"))
#: Least cases in all, as the identity issue asks.
MIN_CASES = 1000
#: Tables a request could write; refused requests must leave every count unchanged.
TABLES = ("agents", "memories", "embeddings", "entities", "rooms", "participants", "worlds", "tasks", "logs")


@pytest.fixture(scope="module")
def gateway(messages_fn, tmp_path_factory):
    tokens = DevTokens(tmp_path_factory.mktemp("fuzz-keys"))
    os.environ["SERVE_OPENAPI"] = "true"
    server = LocalGateway(
        messages_fn.handler, port=0, authorizer=tokens.authorize, public_routes={("GET", "/health")}
    ).start()
    try:
        yield server, tokens.mint("fuzzer", scopes=("agents/admin",))
    finally:
        server.stop()
        os.environ.pop("SERVE_OPENAPI", None)


@pytest.fixture(scope="module")
def api_schema(gateway):
    server, token = gateway
    document = httpx.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    return schemathesis.openapi.from_dict(document)


@pytest.fixture(scope="module")
def fixed_reply():
    from core.model_providers.scripted import models

    previous, models.fixed_reply = models.fixed_reply, "fuzzed"
    yield
    models.fixed_reply = previous


@pytest.fixture(scope="module")
def counter(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:

        def count() -> tuple[int, ...]:
            select = ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
            row = conn.execute(f"SELECT {select}").fetchone()  # noqa: S608 - fixed table names
            assert row is not None
            return tuple(row)

        yield count


#: Agents the fuzzer may create, change and delete (``PUT``/``PATCH``/``DELETE /agents/{agent}``).
THROWAWAY = "fuzz-throwaway-"


def _purge_throwaway_agents(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM agents WHERE name LIKE %s", (f"{THROWAWAY}%",))


CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


def test_no_generated_request_gets_a_server_error_or_writes_when_refused(
    api_schema, gateway, fixed_reply, counter, database_url
):
    """Every operation of the document, ``FUZZ_EXAMPLES`` generated requests each (schemathesis's
    pytest plugin does not run on pytest 9, so the operations are walked here)."""
    server, token = gateway
    cases: Counter[str] = Counter()
    try:
        for result in api_schema.get_all_operations():
            _fuzz(result.ok(), server.url, token, counter, cases)
    finally:
        _purge_throwaway_agents(database_url)
    print("fuzz cases:", sum(cases.values()), dict(cases))
    assert sum(cases.values()) >= MIN_CASES, dict(cases)


def _fuzz(operation: Any, url: str, token: str, counter: Any, cases: Counter[str]) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    manages_agents = operation.path == "/agents/{agent}" and operation.method.upper() != "GET"

    # Valid requests and invalid ones (schemathesis's negative mode), half of them aimed at a real agent.
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=strategy, real_agent=st.booleans())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: a failure here reproduces
        database=None,
    )
    def exercise(case: Any, real_agent: bool) -> None:
        if "agent" in (case.path_parameters or {}):
            if manages_agents:  # never the session's agents: throwaway names, purged after the run
                case.path_parameters["agent"] = (
                    f"{THROWAWAY}{zlib.crc32(str(case.path_parameters['agent']).encode()) % 1000}"
                )
            elif real_agent:
                case.path_parameters["agent"] = "eliza"
        before = counter()
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert counter() == before, f"{label} answered {response.status_code} but wrote rows"
        cases[label] += 1

    exercise()
