"""``GET /health`` (no token: up or down) and ``GET /health/details`` (admin: the database, versions,
agents, each model provider's circuit).

The plain route answers load balancers and uptime checks, which carry no token
(``template.yaml`` gives it ``Authorizer: NONE``), so it says nothing an attacker could use:
no versions, no agent count, no circuit states.
"""

from __future__ import annotations

import functools
import platform
from typing import Any

import psycopg
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from psycopg_pool import PoolTimeout

from core.db.health import DatabaseHealth, check_database
from core.errors import DatabaseError
from functions.api.access import ADMIN_ONLY
from functions.api.context import current
from functions.api.responses import json_response

#: Seconds ``GET /health`` waits for a pooled connection before answering 503.
HEALTH_DB_TIMEOUT_S = 3.0

router = APIGatewayHttpRouter()


@router.get("/health", security=[])
def health() -> Response[dict[str, Any]]:
    """``{"status": "up"}``, or 503 ``{"status": "down"}`` when the database does not answer
    within ``HEALTH_DB_TIMEOUT_S`` (one query through the pool, tried twice)."""
    api = current()
    try:
        api.container.run(database_health(api.container.pool))
    except (psycopg.Error, DatabaseError, OSError) as exc:  # PoolTimeout and PoolClosed are psycopg errors
        api.observability.logger.warning("health: database unavailable", extra={"error": type(exc).__name__})
        return json_response(503, {"status": "down"})
    return json_response(200, {"status": "up"})


@router.get("/health/details", middlewares=ADMIN_ONLY)
def health_details() -> Response[dict[str, Any]]:
    """The database (one query through the pool), versions, agents, and each model provider's circuit.

    ``status`` is ``ok``; ``degraded`` when a provider's circuit is open or the database's
    schema is older than this code's migrations; ``unavailable`` (HTTP 503) when the
    database does not answer within ``HEALTH_DB_TIMEOUT_S``.
    """
    from core.model_providers.resources import provider_health  # health checks are rare: not at init

    api = current()
    providers = provider_health()
    common = {"agents": len(api.orchestrator.get_agents()), "providers": providers}
    try:
        found = api.container.run(database_health(api.container.pool))
    except (psycopg.Error, DatabaseError, OSError) as exc:  # PoolTimeout and PoolClosed are psycopg errors
        api.observability.logger.warning("health: database unavailable", extra={"error": type(exc).__name__})
        return json_response(
            503,
            {
                "status": "unavailable",
                "database": {"ok": False, "error": type(exc).__name__},
                "versions": code_versions(),
                **common,
            },
        )
    degraded = any(p["state"] == "open" for p in providers.values()) or not found.schema_current
    database = {"ok": True, "latencyMs": found.latency_ms, "schemaCurrent": found.schema_current}
    versions = {**code_versions(), "postgres": found.postgres, "pgvector": found.pgvector, "schema": found.schema}
    return json_response(
        200, {"status": "degraded" if degraded else "ok", "database": database, "versions": versions, **common}
    )


async def database_health(pool: Any) -> DatabaseHealth:
    """``check_database`` through the pool, tried a second time after a lost connection.

    The pool checks a connection before use only once it has idled ``DB_POOL_CHECK_AFTER_S``;
    one the server ended sooner (a restart, RDS Proxy's idle timeout, ``pg_terminate_backend``)
    fails its first query, and the pool then discards it: the second try gets a new one. Not
    after a ``PoolTimeout``: a second wait would only double the time to answer 503.

    Raises:
        psycopg.Error: the database did not answer twice (``PoolTimeout`` at once).
    """
    try:
        return await check_database(pool, HEALTH_DB_TIMEOUT_S)
    except PoolTimeout:
        raise
    except psycopg.OperationalError:
        return await check_database(pool, HEALTH_DB_TIMEOUT_S)


@functools.cache
def code_versions() -> dict[str, str]:
    """This package's version (``unknown`` in a deployment package, which has no metadata) and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("serverless-agent-runtime")
    except PackageNotFoundError:
        package = "unknown"
    return {"package": package, "python": platform.python_version()}
