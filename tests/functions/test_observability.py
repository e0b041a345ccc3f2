"""functions.observability as Lambda runs it: JSON lines with the Lambda context, the correlation id and the
run keys (``core``'s lines too), EMF metrics per function, and X-Ray tracing only when enabled (the SDK is
not even imported otherwise). Real events, real database, moto's SQS; tracing runs in subprocesses (it
patches libraries process-wide)."""

from __future__ import annotations

import copy
import importlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.embeddings.request import EmbeddingRequest
from core.errors import ModelError
from core.log_context import LogContextFilter, log_keys
from core.types import ModelType
from core.types.memory import content_hash
from functions.observability import ROUTER, Observability, route_core_logs, routes_core_logs, tracing_enabled
from infra.local.lambda_context import new_context
from tests.factories import EVENTS, FakeContext, http_event, sqs_event

ROOT = Path(__file__).resolve().parents[2]
REPLY = "<response><thought>hi</thought><actions>REPLY</actions><text>I am Eliza.</text></response>"
HANDLERS = ("functions.api.app", "functions.embeddings", "functions.tasks", "functions.migrate")


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def json_logs():
    """Lambda's logging set-up on a function (``core`` routed through its Powertools handler, INFO and
    above), its stream swapped for a buffer; returns the parsed lines. Everything is restored after."""
    restore: list = []

    def capture(fn):
        obs = fn.observability
        handler = obs.logger.registered_handler
        core = logging.getLogger("core")
        saved = (core.handlers[:], core.propagate, core.level, obs.logger.log_level, obs.routes_core_logs)
        buffer = io.StringIO()
        stream = handler.setStream(buffer)
        obs.logger.setLevel(logging.INFO)
        obs.routes_core_logs = True

        def undo() -> None:
            handler.setStream(stream)
            core.handlers[:], core.propagate = saved[0], saved[1]
            core.setLevel(saved[2])
            obs.logger.setLevel(saved[3])
            obs.routes_core_logs = saved[4]

        restore.append(undo)
        return lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield capture
    for undo in reversed(restore):
        undo()


@pytest.fixture
def emf(monkeypatch, capsys):
    """Metrics on (the suite turns them off); returns the EMF blobs printed since the fixture started."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    capsys.readouterr()

    def blobs() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]

    return blobs


def _metric(blobs: list[dict], name: str) -> list[dict]:
    return [b for b in blobs if any(m["Name"] == name for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])]


def _post(fn, body: dict) -> tuple[dict, dict]:
    event = http_event("POST", "/agents/eliza/messages", body)
    response = fn.handler(event, FakeContext())
    return event, {"status": response["statusCode"], **json.loads(response["body"])}


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _last_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def child_env(function_env):
    """The functions' environment for a fresh interpreter, without any tracing switch."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_XRAY_DAEMON_ADDRESS",
            "_X_AMZN_TRACE_ID",
            "TRACING_ENABLED",
            "POWERTOOLS_TRACE_DISABLED",
            "LAMBDA_TASK_ROOT",
            "CORE_LOGS_JSON",
        }
    }
    return {**env, "PYTHONPATH": str(ROOT), "CORE_LOGS_JSON": "false"}


# -- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),  # tests, scripts, the local stack
        ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, False),  # Lambda without X-Ray
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793"}, True),
        (
            {"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_XRAY_DAEMON_ADDRESS": "a:1", "POWERTOOLS_TRACE_DISABLED": "true"},
            False,
        ),  # template.yaml with Tracing=PassThrough
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_XRAY_DAEMON_ADDRESS": "a:1", "AWS_SAM_LOCAL": "true"}, False),
        ({"TRACING_ENABLED": "true"}, True),  # explicit opt-in, e.g. a local X-Ray daemon
        ({"TRACING_ENABLED": "TRUE", "POWERTOOLS_TRACE_DISABLED": "1"}, False),  # disabled always wins
        ({"TRACING_ENABLED": "no"}, False),
    ],
)
def test_when_tracing_is_enabled(env, enabled):
    assert tracing_enabled(env) is enabled


@pytest.mark.parametrize(
    ("env", "routed"),
    [
        ({}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, True),
        ({"CORE_LOGS_JSON": "true"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "CORE_LOGS_JSON": "false"}, False),
    ],
)
def test_when_core_logs_are_routed(env, routed):
    assert routes_core_logs(env) is routed


def test_service_and_namespace_come_from_the_environment_with_defaults(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    default = Observability("obs-test-default")
    assert (default.service, default.namespace) == ("obs-test-default", "ServerlessAgentRuntime")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "obs-test-configured")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TestNs")
    configured = Observability("obs-test-default")
    assert (configured.service, configured.namespace) == ("obs-test-configured", "TestNs")
    assert configured.logger.service == "obs-test-configured"


def test_the_log_context_filter_is_installed_once_and_routing_is_idempotent():
    first, second = Observability("obs-test-once"), Observability("obs-test-once")  # one stdlib logger
    handler = first.logger.registered_handler
    assert second.logger.registered_handler is handler
    assert sum(isinstance(f, LogContextFilter) for f in handler.filters) == 1
    core = logging.getLogger("core")
    saved = (core.handlers[:], core.propagate, core.level)
    try:
        route_core_logs(first.logger)
        route_core_logs(first.logger)
        assert core.handlers == [ROUTER] and core.propagate is False and ROUTER.default is first.logger
    finally:
        core.handlers[:], core.propagate = saved[0], saved[1]
        core.setLevel(saved[2])


# -- logs -------------------------------------------------------------------------------------


def test_core_lines_of_a_turn_carry_the_request_id_and_the_run_keys(messages_fn, scripted, json_logs):
    lines = json_logs(messages_fn)
    agent_id = str(messages_fn.orchestrator.get_agent("eliza").agent_id)
    scripted.script(ModelType.TEXT_SMALL, "<response><action>IGNORE</action></response>")
    _, first = _post(messages_fn, {"text": "hello all", "roomId": str(uuid.uuid4()), "channelType": "GROUP"})
    assert first["status"] == 200 and first["didRespond"] is False

    # A group message and an answer the should-respond step cannot read: core.messaging warns.
    scripted.script(ModelType.TEXT_SMALL, "no idea")
    with log_keys(agent_id=agent_id, room_id=first["roomId"], run_id="run-under-test"):
        event, second = _post(messages_fn, {"text": "anyone?", "roomId": first["roomId"], "channelType": "GROUP"})
    assert second["status"] == 200

    request_id = event["requestContext"]["requestId"]
    turn = [line for line in lines() if line.get("correlation_id") == request_id]
    [core_line] = [line for line in turn if line.get("name") == "core.messaging.should_respond"]
    assert core_line["level"] == "WARNING" and "not understood" in core_line["message"]
    assert (core_line["agent_id"], core_line["room_id"]) == (agent_id, first["roomId"])
    assert core_line["run_id"]  # ours now; the runtime's own once it binds one
    assert (core_line["service"], core_line["function_name"]) == ("agent-messages", FakeContext.function_name)
    assert core_line["function_request_id"] == FakeContext.aws_request_id and "cold_start" in core_line
    [handled] = [line for line in turn if line["message"] == "message handled"]
    assert handled["name"] == "agent-messages" and handled["room_id"] == first["roomId"]
    assert handled["did_respond"] is False and handled["message_id"] == second["messageId"]
    # Nothing of the first invocation leaks into the second: each has its own correlation id.
    assert not any(line.get("run_id") for line in lines() if line.get("correlation_id") != request_id)


def test_an_embedding_batch_is_logged_with_its_ids(messages_fn, embeddings_fn, scripted, purge, json_logs):
    lines = json_logs(embeddings_fn)
    message_id, request = _queued_request(messages_fn, scripted, "log this batch")
    event = sqs_event([request, "not json"])
    context = new_context("embeddings")
    result = embeddings_fn.handler(event, context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [event["Records"][1]["messageId"]]
    [batch] = [line for line in lines() if line["message"] == "embedding batch"]
    assert batch["correlation_id"] == context.aws_request_id and batch["batch_size"] == 2
    assert batch["memory_ids"] == [message_id] and batch["queues"] == ["agent-runtime-embeddings-high"]
    assert batch["message_ids"] == [r["messageId"] for r in event["Records"]]
    [bad] = [line for line in lines() if line["level"] == "WARNING"]
    assert bad["message_id"] == event["Records"][1]["messageId"] and bad["correlation_id"] == context.aws_request_id


@pytest.fixture
def tasks_fn(function_env):
    """functions.tasks imported fresh and closed after, leaving no closed container in sys.modules."""
    cached = sys.modules.get("functions.tasks")
    if cached is not None and cached.container.pool.closed:
        del sys.modules["functions.tasks"]
    module = importlib.import_module("functions.tasks")
    yield module
    module.container.close()
    del sys.modules["functions.tasks"]


def test_a_scheduled_run_is_correlated_by_its_event_id(tasks_fn, json_logs, emf):
    lines = json_logs(tasks_fn)
    event = json.loads((EVENTS / "rust.example-eventbridge-schedule.json").read_text())
    tasks_fn.handler(event, new_context("tasks", timeout_s=300))
    runs = [line for line in lines() if line["message"].startswith("scheduled run")]
    assert [line["message"] for line in runs] == ["scheduled run", "scheduled run done"]
    assert {line["correlation_id"] for line in runs} == {event["id"]}
    [blob] = _metric(emf(), "TasksClaimed")
    assert blob["service"] == "agent-tasks" and blob["TasksFailed"] == [0.0] and "ScheduleLag" in blob

    # Without an id (a bare tick), the invocation's request id correlates.
    context = new_context("tasks", timeout_s=300)
    tasks_fn.handler({}, context)
    assert lines()[-1]["correlation_id"] == context.aws_request_id


# -- metrics ----------------------------------------------------------------------------------


def test_messages_handled_are_counted_by_mode_and_answer(messages_fn, scripted, emf):
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    assert _post(messages_fn, {"text": "Hello"})[1]["status"] == 200
    [blob] = _metric(emf(), "MessagesHandled")
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ServerlessAgentRuntime"
    # One value, published as the total (service) and split (service, Mode, DidRespond).
    assert directive["Dimensions"] == [["service"], ["service", "Mode", "DidRespond"]]
    assert (blob["service"], blob["Mode"], blob["DidRespond"], blob["MessagesHandled"]) == (
        "agent-messages",
        "simple",
        "true",
        [1.0],
    )


def test_message_errors_are_counted_by_status_class(messages_fn, scripted, emf):
    assert _post(messages_fn, {"text": ""})[1]["status"] == 422
    scripted.script(ModelType.TEXT_LARGE, ModelError("upstream 500", retryable=False))
    assert _post(messages_fn, {"text": "anyone?"})[1]["status"] == 502
    big = messages_fn.handler(http_event("POST", "/agents/eliza/messages", {"text": "x" * 70_000}), FakeContext())
    assert big["statusCode"] == 413
    assert messages_fn.handler(http_event("GET", "/agents/nobody"), FakeContext())["statusCode"] == 404
    blobs = emf()
    assert [b["StatusClass"] for b in _metric(blobs, "MessageErrors")] == ["4xx", "5xx", "4xx"]  # not the GET
    assert _metric(blobs, "MessagesHandled") == []


def test_an_embedding_batch_emits_its_figures(messages_fn, embeddings_fn, scripted, purge, emf):
    _, request = _queued_request(messages_fn, scripted, "count this batch")
    embeddings_fn.handler(sqs_event([request, "not json"]), FakeContext())
    [blob] = _metric(emf(), "EmbeddingsStored")
    assert blob["service"] == "agent-embeddings"
    assert (
        blob["BatchSize"],
        blob["EmbeddingsStored"],
        blob["InvalidEmbeddingRequests"],
        blob["EmbeddingsFailed"],
    ) == ([2.0], [1.0], [1.0], [0.0])


def test_metrics_stay_silent_when_disabled(messages_fn, scripted, capsys):
    capsys.readouterr()
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    assert _post(messages_fn, {"text": "quiet"})[1]["status"] == 200
    assert '"_aws"' not in capsys.readouterr().out


def test_disabled_metrics_are_dropped_after_each_invocation(monkeypatch, capsys):
    # Powertools' add_metric prints its buffer once a metric holds 100 values, disabled or not.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    obs = Observability("obs-test-disabled-metrics")

    @obs.lambda_handler()
    def handler(event, context):
        obs.metrics.add_metric(name="Turns", unit="Count", value=1)
        return "ok"

    capsys.readouterr()
    for _ in range(150):
        assert handler({}, new_context("disabled-metrics")) == "ok"
    assert '"_aws"' not in capsys.readouterr().out
    assert obs.metrics.provider.metric_set == {}


def test_concurrent_functions_keep_their_own_core_lines():
    """Two functions invoked at the same time on two threads of one process (the local stack's
    gateway and poller): each ``core`` line goes to the function invoked on its thread."""
    core = logging.getLogger("core")
    saved = (core.handlers[:], core.propagate, core.level)
    functions, buffers, streams, targets = {}, {}, {}, {}
    both_inside = threading.Barrier(2, timeout=10)
    for name in ("obs-test-route-a", "obs-test-route-b"):
        obs = functions[name] = Observability(name)
        obs.routes_core_logs = True
        buffers[name] = io.StringIO()
        targets[name] = obs.logger.registered_handler
        streams[name] = targets[name].setStream(buffers[name])

        def make(obs=obs, name=name):
            @obs.lambda_handler()
            def handler(event, context):
                both_inside.wait()  # the other function is routed too by now
                logging.getLogger("core.db.retry").warning("retry in %s", name)
                both_inside.wait()
                return name

            return handler

        functions[name] = make()
    errors: list[BaseException] = []

    def invoke(name: str) -> None:
        try:
            functions[name]({}, new_context(name))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=invoke, args=(name,)) for name in functions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert errors == []
        for name, buffer in buffers.items():
            lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
            assert [(line["message"], line["service"], line["name"]) for line in lines] == [
                (f"retry in {name}", name, "core.db.retry")
            ]
    finally:
        for name, target in targets.items():
            target.setStream(streams[name])
        core.handlers[:], core.propagate = saved[0], saved[1]
        core.setLevel(saved[2])


def test_a_metric_that_cannot_be_built_is_logged_not_raised(emf, json_logs, messages_fn):
    lines = json_logs(messages_fn)
    too_many = {f"D{i}": "x" for i in range(40)}  # CloudWatch allows 30 dimensions
    messages_fn.observability.count("Broken", **too_many)
    assert emf() == []
    assert [line["message"] for line in lines()] == ["could not emit metric Broken"]


class _Recorder(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def response_url():
    """A local stand-in for CloudFormation's pre-signed S3 ResponseURL; ``.bodies`` are the answers."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.bodies = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_migrations_are_counted_and_correlated_by_the_cloudformation_request(
    database_url, response_url, emf, json_logs, monkeypatch
):
    from functions import migrate as migrate_fn

    lines = json_logs(migrate_fn)
    event = json.loads((EVENTS / "pt-py.cloudformationCustomResourceCreate.json").read_text())
    event["ResponseURL"] = f"http://127.0.0.1:{response_url.server_port}/response"
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert migrate_fn.handler(copy.deepcopy(event), new_context("migrate", timeout_s=60))["Status"] == "SUCCESS"
    monkeypatch.delenv("DATABASE_URL")
    assert migrate_fn.handler(copy.deepcopy(event), new_context("migrate", timeout_s=60))["Status"] == "FAILED"
    blobs = emf()
    assert [b["MigrationsApplied"] for b in _metric(blobs, "MigrationsApplied")] == [[0.0]]  # already migrated
    assert [b["MigrationFailures"] for b in _metric(blobs, "MigrationFailures")] == [[1.0]]
    assert {line["correlation_id"] for line in lines()} == {event["RequestId"]}
    assert [b["Status"] for b in response_url.bodies] == ["SUCCESS", "FAILED"]


# -- traces -----------------------------------------------------------------------------------


def test_with_tracing_off_no_handler_imports_the_xray_sdk(child_env):
    code = (
        "import json, sys\n"
        f"for name in {HANDLERS!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps({'xray': sorted(m for m in sys.modules if m.startswith('aws_xray_sdk')),"
        " 'tracer_module': 'aws_lambda_powertools.tracing' in sys.modules}))\n"
        "for name in ('functions.api.app', 'functions.embeddings', 'functions.tasks'):\n"
        "    sys.modules[name].container.close()\n"
    )
    found = _last_json(_run(code, child_env))
    assert found["xray"] == []
    # Powertools' package always imports its Tracer class (a few ms, no SDK): only the SDK is lazy.
    assert found["tracer_module"] is True


def test_with_tracing_on_the_handler_sends_its_subsegment_to_the_daemon(child_env):
    trace_id = "1-5759e988-bd862e3fe1be46a994272793"
    code = f"""
import json, os, socket, sys
daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", 0))
daemon.settimeout(10)
os.environ.update({{"AWS_LAMBDA_FUNCTION_NAME": "messages", "LAMBDA_TASK_ROOT": os.getcwd(),
                   "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % daemon.getsockname()[1],
                   "_X_AMZN_TRACE_ID": "Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1"}})
import functions.api.app as fn
from tests.factories import FakeContext, http_event
status = fn.handler(http_event("GET", "/agents"), FakeContext())["statusCode"]
header, document = daemon.recv(65535).decode().split("\\n", 1)
fn.container.close()
print(json.dumps({{"status": status, "segment": json.loads(document)}}))
"""
    found = _last_json(_run(code, child_env))
    segment = found["segment"]
    assert found["status"] == 200
    assert (segment["name"], segment["type"], segment["trace_id"]) == ("## handler", "subsegment", trace_id)
    assert segment["annotations"]["Service"] == "agent-messages"
    assert "metadata" not in segment  # responses hold users' messages: not recorded by default


def test_with_tracing_on_but_no_sdk_the_function_warns_and_runs_untraced(child_env):
    code = """
import json, sys
sys.modules["aws_xray_sdk"] = None  # as when aws-xray-sdk is not in the deployment package
from functions.observability import Observability
from tests.factories import FakeContext
observability = Observability("obs-test-no-sdk")
@observability.lambda_handler()
def handler(event, context):
    return {"n": event["n"] + 1}
print(json.dumps({"result": handler({"n": 1}, FakeContext())}))
"""
    result = _run(code, {**child_env, "TRACING_ENABLED": "true", "POWERTOOLS_LOG_LEVEL": "INFO"})
    assert _last_json(result) == {"result": {"n": 2}}
    [warning] = [json.loads(line) for line in result.stdout.splitlines() if '"WARNING"' in line]
    assert "X-Ray SDK cannot be imported" in warning["message"] and warning["service"] == "obs-test-no-sdk"


def _queued_request(messages_fn, scripted, text: str) -> tuple[str, str]:
    """Post ``text`` and return its message id and the embedding request the function queued for it."""
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    _, posted = _post(messages_fn, {"text": text})
    agent = messages_fn.orchestrator.get_agent("eliza")
    request = EmbeddingRequest(
        memory_id=uuid.UUID(posted["messageId"]),
        agent_id=agent.agent_id,
        content_hash=content_hash(text),
        priority="high",
    )
    return posted["messageId"], request.model_dump_json(by_alias=True)
