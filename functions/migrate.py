"""The migrate function: a CloudFormation custom resource (``Custom::Migrations``) that applies
the schema migrations before the other functions take traffic.

Create and Update apply pending migrations (``core.db.migrations.migrate``: advisory lock,
checksums, one transaction per file; never a downgrade). Delete succeeds without touching the
schema: a stack operation never drops data.

CloudFormation waits for an HTTP PUT to the event's pre-signed ``ResponseURL`` (its custom
resource contract); unanswered, the stack hangs for an hour. So this handler answers on every
path: nothing that can fail runs at import time, every exception becomes a FAILED response
with a ``Reason``, and a migration still running close to the function's timeout is answered
FAILED before Lambda ends the invocation. A response that cannot be delivered raises, so
Lambda's asynchronous retries (CloudFormation invokes asynchronously) run the idempotent
migration and answer again.

Observability (``functions.observability``): CloudFormation's ``RequestId`` is the
``correlation_id`` of every line; metrics ``MigrationsApplied`` (files applied by a Create or
Update) and ``MigrationFailures`` (FAILED answers).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from core.db.credentials import database_conninfo
from core.db.migrations import migrate
from core.deployment.plugins import deployment_plugins
from core.settings import Settings
from functions import end_init_phase
from functions.observability import Observability

observability = Observability("agent-migrate")
logger, metrics = observability.logger, observability.metrics

#: Seconds kept before the function's timeout to answer CloudFormation.
RESPONSE_MARGIN_S = 10.0
#: Seconds libpq waits for the database to accept a connection, unless the URL says otherwise
#: (an unreachable database, e.g. a wrong security group, then fails fast with a clear reason).
CONNECT_TIMEOUT_S = 10
#: CloudFormation refuses response bodies larger than 4 KiB.
MAX_RESPONSE_BYTES = 4096
#: Tries of the PUT to ``ResponseURL`` (S3 may fail transiently), 1 s then 2 s apart.
PUT_ATTEMPTS = 3


def database_url() -> str:
    """The database to migrate, as a libpq conninfo string.

    ``DATABASE_URL``, or the Secrets Manager secret ``DATABASE_SECRET_ARN`` with
    ``DATABASE_HOST``/``DATABASE_NAME`` (``core.db.credentials``), as the other functions.

    Raises:
        ConfigurationError: neither is set, or the secret lacks a field.
    """
    conninfo = database_conninfo(Settings.from_env())
    url = conninfo() if callable(conninfo) else conninfo
    if "connect_timeout" in conninfo_to_dict(url):
        return url
    return make_conninfo(url, connect_timeout=CONNECT_TIMEOUT_S)


@observability.lambda_handler(correlation_id_path="RequestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for CloudFormation custom resource events.

    Returns:
        The response body sent to ``ResponseURL``.

    Raises:
        urllib.error.URLError: the response could not be delivered after ``PUT_ATTEMPTS``
            (raised so that Lambda retries the invocation).
    """
    request = CloudFormationCustomResourceEvent(event)
    running: Future[list[str]] | None = None
    budget_s = _time_left_s(context)
    try:
        if request.request_type == "Delete":
            logger.info("delete: the schema and its data are kept")
            body = _response(request, "SUCCESS", data={"Applied": "", "AppliedCount": "0"})
        else:
            running = _start(database_url())
            applied = running.result(timeout=budget_s)
            logger.info("migrations applied", extra={"applied": applied})
            metrics.add_metric(name="MigrationsApplied", unit=MetricUnit.Count, value=len(applied))
            body = _response(
                request, "SUCCESS", data={"Applied": ", ".join(applied)[:1024], "AppliedCount": str(len(applied))}
            )
    except Exception as exc:
        if running is not None and not running.done():
            logger.error("migrations still running near the function's timeout: answering FAILED")
            reason = (
                f"migrations still running after {budget_s:.0f} s, answered before the function's timeout;"
                " applied files stay applied and the next deploy resumes"
            )
        else:
            logger.exception("migrations failed")
            reason = f"{type(exc).__name__}: {exc}"
        body = _response(request, "FAILED", reason=f"{reason} (log stream {context.log_stream_name})")
        metrics.add_metric(name="MigrationFailures", unit=MetricUnit.Count, value=1)
    send_response(request.response_url, body)
    if running is not None and not running.done():
        # Stay busy until Lambda's timeout ends the sandbox: a frozen container would keep the
        # connection, its open transaction and the advisory lock until it is reclaimed.
        _wait_quietly(running)
    return body


def _start(url: str) -> Future[list[str]]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrate")
    try:
        # The deployment's plugins are resolved in the worker too: a bad plugin is a FAILED answer.
        return executor.submit(lambda: migrate(url, plugins=deployment_plugins(Settings.from_env())))
    finally:
        executor.shutdown(wait=False)  # the thread finishes its job; no new ones


def _time_left_s(context: LambdaContext) -> float:
    return max(1.0, context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_S)


def _wait_quietly(running: Future[list[str]]) -> None:
    try:
        running.result()
        logger.warning("migrations finished after the FAILED answer")
    except Exception:
        logger.exception("migrations failed after the FAILED answer")


def _response(
    request: CloudFormationCustomResourceEvent, status: str, *, reason: str = "", data: dict[str, str] | None = None
) -> dict[str, Any]:
    """The response body of AWS's custom resource contract, within ``MAX_RESPONSE_BYTES``.

    ``PhysicalResourceId`` is the one CloudFormation sent (Update, Delete), else a name made
    from the logical id, so it never changes across updates (a new one would mean replacement).
    """
    body: dict[str, Any] = {
        "Status": status,
        "PhysicalResourceId": request.physical_resource_id or f"{request.logical_resource_id}-schema-migrations",
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": False,
        "Data": {**(data or {}), "SchemaVersion": str(request.resource_properties.get("SchemaVersion", ""))},
    }
    if reason:
        body["Reason"] = reason
    return _fit(body)


def _fit(body: dict[str, Any]) -> dict[str, Any]:
    excess = len(json.dumps(body).encode()) - MAX_RESPONSE_BYTES
    if excess > 0 and body.get("Reason"):
        body["Reason"] = body["Reason"][: max(0, len(body["Reason"]) - excess - 16)] + " [truncated]"
    if len(json.dumps(body).encode()) > MAX_RESPONSE_BYTES:
        body["Data"] = {}
    return body


def send_response(url: str, body: dict[str, Any]) -> None:
    """PUT ``body`` to the pre-signed ``url``, retrying transient failures.

    ``Content-Type`` is sent empty: the URL's signature was computed without one (as AWS's
    own ``cfn-response`` does).

    Raises:
        urllib.error.URLError: every attempt failed.
    """
    data = json.dumps(body).encode()
    for attempt in range(1, PUT_ATTEMPTS + 1):
        put = urllib.request.Request(
            url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
        )
        try:
            with urllib.request.urlopen(put, timeout=10) as answer:
                logger.info("response sent", extra={"status": body["Status"], "http_status": answer.status})
                return
        except (urllib.error.URLError, TimeoutError) as exc:
            logger.warning("response not delivered", extra={"attempt": attempt, "error": str(exc)})
            if attempt == PUT_ATTEMPTS:
                raise
            time.sleep(attempt)


end_init_phase()  # last: resumes the collector paused by functions/__init__.py
