"""Cold start of each handler: the cold request (init phase + first invocation), against its floor.

Two figures per function, as issue 18 decides them:

* **Without SnapStart**: the init phase (a fresh interpreter imports the handler module, which
  builds its container against an embedded Postgres, with the scripted model provider), against
  the **floor** measured in the same run: another fresh interpreter that imports exactly the
  third-party modules the handler ended up loading, makes the AWS SDK clients the handler made
  (same services, from one botocore session: the SDK's own cost, not ours) and does one database round
  trip (connect, ``SELECT 1``). ``{name}_init_over_floor`` is their ratio (target: at most 1.25).
  For the messages function the first invocation is measured too (a real API Gateway event,
  ``POST .../messages``): ``messages_cold_request`` = init phase + first invocation.
* **With SnapStart** (messages function, the one ``template.yaml`` can snapshot): the init phase
  runs when a version is published; a cold request pays the after-restore hooks and a first
  invocation (a new pool connects, reading the secret again): ``messages_snapstart_cold_request``
  (target: at most 100 ms; Lambda's own restore time is not included, it cannot be measured here).

And what each cold-start trick still buys, measured in the same run by switching it off:
``{name}_gc_pause_buys`` (ms of init saved by pausing the cyclic collector during the init
phase, ``functions/__init__.py``: the handler run again with ``gc.disable``/``gc.freeze`` made
no-ops).

Like for like: both interpreters read compiled bytecode. The dependencies' ``.pyc`` files were
written when they were installed, while this project's modules are compiled from source on every
import when ``PYTHONDONTWRITEBYTECODE`` is set (as in this workspace). So every run uses one
private bytecode cache (``PYTHONPYCACHEPREFIX``, a temporary directory), filled by an unmeasured
warm-up run of each interpreter; ``--no-bytecode-cache`` measures without. (The Lambda package
ships ``.pyc`` files compiled by the runtime's Python for the same reason.)

Configuration as deployed: the embedding queues exist (moto's SQS server, as the local stack runs
it) and their URLs are set, so the handlers build their SQS client in the init phase; the database
credentials are read from a Secrets Manager secret (``DATABASE_SECRET_ARN``, on moto's server too).

Figures are medians of ``runs`` runs, the variants alternated so that a busy moment of the machine
hits all of them; ``_cpu`` figures are the processes' CPU time: steadier on a shared machine, but
without the waits on the database. ``--breakdown`` also prints, per handler, this project's modules
that cost the most (self time of ``python -X importtime``).

Which Python: the handlers run on ``--python=PATH`` (default: this interpreter), which must have the
runtime dependencies and ``snapshot_restore_py``. ``make bench`` passes ``.venv-lambda``'s (Lambda's
runtime version, python3.12, runtime dependencies alone); Postgres and moto's server run from this
interpreter.

Run: ``.venv/bin/python bench/cold_start.py [runs] [handler ...] [--python=PATH] [--breakdown]
[--no-bytecode-cache]`` (default 5 runs of every handler; ``handler`` is ``messages``, ``tasks``,
``embeddings`` or ``migrate``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

#: Short name (metrics, command line) -> handler module.
HANDLERS = {
    "messages": "functions.api.app",
    "embeddings": "functions.embeddings",
    "migrate": "functions.migrate",
    "tasks": "functions.tasks",
}
OURS = ("core", "functions", "infra", "tests", "bench")

#: A handler's init phase (and first invocation, if it has one), in a fresh interpreter. ``{gc_pause}``
#: False makes the collector's pause a no-op (what the pause buys); ``{eager}`` builds every deferred
#: pydantic validator right after the init phase (what ``defer_build`` buys the cold request).
PROBE = """
import json, sys, time
if not {gc_pause}:
    import gc
    gc.disable = gc.freeze = lambda: None  # functions/__init__.py and end_init_phase then change nothing
import core.aws  # tiny (botocore is imported on the first client): timed below, around the SDK's client creation
sdk_ms, services, make_client = [0.0], [], core.aws.client
def timed_client(service_name, *args, **kwargs):
    services.append(service_name)
    started = time.perf_counter()
    try:
        return make_client(service_name, *args, **kwargs)
    finally:
        sdk_ms[0] += (time.perf_counter() - started) * 1000
core.aws.client = timed_client
t0, c0 = time.perf_counter(), time.process_time()
import {module}
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
figures = {{"ms": elapsed * 1000, "cpu_ms": cpu * 1000, "sdk_clients_ms": sdk_ms[0], "services": services}}
stdlib = set(sys.stdlib_module_names)
figures["modules"] = sorted(m for m in sys.modules if m.split('.')[0] not in stdlib
                            and m.split('.')[0] not in {ours} and not m.startswith('_'))
if {eager}:
    from functions.snapstart import build_deferred_validators
    started = time.perf_counter()
    build_deferred_validators()
    figures["eager_validators_ms"] = (time.perf_counter() - started) * 1000
figures.update(invoke())
print(json.dumps(figures))
"""
#: What a handler's probe does after its init phase, by short name.
INVOKE = {
    "messages": """
def invoke():
    from functions.api.app import handler
    from core.model_providers.scripted import models
    from core.types import ModelType
    from tests.factories import FakeContext, http_event
    timings = {}
    for call in ("first", "warm"):
        models.script(ModelType.TEXT_LARGE, "<response><actions>REPLY</actions><text>Hello.</text></response>")
        event = http_event("POST", "/agents/Eliza/messages", {"text": "Hello, who are you?"})
        started = time.perf_counter()
        answer = handler(event, FakeContext())
        timings[call + "_invocation_ms"] = (time.perf_counter() - started) * 1000
        assert answer["statusCode"] == 200, answer
    return timings
""",
}
NO_INVOCATION = "def invoke():\n    return {}\n"
#: The messages function under Lambda SnapStart: init phase (not measured: it runs when a version is
#: published), the runtime's before-snapshot hooks, then what a cold request pays after a restore: the
#: after-restore hooks and the first invocation (a new pool connects, reading the secret again).
SNAPSTART_PROBE = (
    "import json, time\n"
    + INVOKE["messages"]
    + """
import snapshot_restore_py
import functions.api.app
for hook, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
    hook(*args, **kwargs)
started = time.perf_counter()
for hook, args, kwargs in snapshot_restore_py.get_after_restore():
    hook(*args, **kwargs)
print(json.dumps({"after_restore_ms": (time.perf_counter() - started) * 1000, **invoke()}))
"""
)
#: The floor: the bare import of the handler's third-party modules, the SDK clients it made (one
#: botocore session, as the handler's ``core.aws``) and one database round trip (connect, SELECT 1).
FLOOR = """
import importlib, json, sys, time
given = json.loads(sys.stdin.read())
t0, c0 = time.perf_counter(), time.process_time()
for name in given["modules"]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
imported = time.perf_counter()
if given["services"]:
    import botocore.session
    session = botocore.session.get_session()
    clients = [session.create_client(service) for service in given["services"]]
clients_made = time.perf_counter()
import psycopg
with psycopg.connect(given["database_url"]) as connection:
    connection.execute("SELECT 1").fetchone()
end = time.perf_counter()
print(json.dumps({"ms": (end - t0) * 1000, "cpu_ms": (time.process_time() - c0) * 1000,
                  "import_ms": (imported - t0) * 1000, "sdk_clients_ms": (clients_made - imported) * 1000,
                  "database_ms": (end - clients_made) * 1000}))
"""


def run(python: str, code: str, env: dict[str, str], stdin: str = "") -> dict:
    result = subprocess.run(
        [python, "-c", code], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def own_breakdown(python: str, module: str, env: dict[str, str], top: int = 12) -> list[tuple[str, float]]:
    """This project's modules by self time (ms) while ``module`` is imported, costliest first."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    costs: list[tuple[str, float]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if self_us.isdigit() and name.split(".")[0] in OURS:
            costs.append((name, int(self_us) / 1000))
    return sorted(costs, key=lambda c: c[1], reverse=True)[:top]


def measure(python: str, name: str, module: str, env: dict[str, str], database_url: str, runs: int) -> None:
    """One handler: init phase against the floor, what the collector's pause buys, its first invocation."""
    invoke = INVOKE.get(name, NO_INVOCATION)
    probe, no_gc_pause = (
        invoke + PROBE.format(module=module, ours=repr(set(OURS)), gc_pause=pause, eager=False)
        for pause in (True, False)
    )
    eager = invoke + PROBE.format(module=module, ours=repr(set(OURS)), gc_pause=True, eager=True)
    measure_eager = name in INVOKE and "build_deferred_validators" in Path("functions/snapstart.py").read_text()
    try:
        warm = run(python, probe, env)  # fills the bytecode cache; not measured
    except subprocess.CalledProcessError as exc:
        log(f"{module}: skipped ({exc.stderr.strip().splitlines()[-1]})")
        return
    floor_input = json.dumps({"modules": warm["modules"], "services": warm["services"], "database_url": database_url})
    run(python, FLOOR, env, floor_input)
    probes: list[dict] = []
    floors: list[dict] = []
    no_pauses: list[dict] = []
    eagers: list[dict] = []
    for _ in range(runs):  # alternated, so that a busy moment of the machine hits all
        probes.append(run(python, probe, env))
        floors.append(run(python, FLOOR, env, floor_input))
        no_pauses.append(run(python, no_gc_pause, env))
        if measure_eager:
            eagers.append(run(python, eager, env))
    init, floor = median(probes, "ms"), median(floors, "ms")
    log(
        f"{module}: init phase {init:.0f} ms, floor {floor:.0f} ms (import {median(floors, 'import_ms'):.0f}, "
        f"SDK clients {', '.join(warm['services']) or 'none'} {median(floors, 'sdk_clients_ms'):.0f}, "
        f"database {median(floors, 'database_ms'):.0f}): {init / floor:.2f}x"
    )
    emit(f"{name}_init", init, "ms")
    emit(f"{name}_floor", floor, "ms")
    emit(f"{name}_floor_import", median(floors, "import_ms"), "ms")
    emit(f"{name}_floor_sdk_clients", median(floors, "sdk_clients_ms"), "ms")
    emit(f"{name}_floor_database", median(floors, "database_ms"), "ms")
    emit(f"{name}_init_over_floor", init / floor, "ratio")
    emit(f"{name}_init_over_floor_cpu", median(probes, "cpu_ms") / median(floors, "cpu_ms"), "ratio")
    emit(f"{name}_init_sdk_clients", median(probes, "sdk_clients_ms"), "ms")
    emit(f"{name}_gc_pause_buys", median(no_pauses, "ms") - init, "ms")
    emit(f"{name}_init_over_floor_without_gc_pause", median(no_pauses, "ms") / floor, "ratio")
    if "first_invocation_ms" in probes[0]:
        first = median(probes, "first_invocation_ms")
        cold = statistics.median(r["ms"] + r["first_invocation_ms"] for r in probes)
        emit(f"{name}_first_invocation", first, "ms")
        emit(f"{name}_warm_invocation", median(probes, "warm_invocation_ms"), "ms")
        emit(f"{name}_cold_request", cold, "ms")
        log(f"{module}: first invocation {first:.0f} ms, cold request {cold:.0f} ms")
        if eagers:  # every validator built in the init phase, against building on first use (defer_build):
            # the build, plus the first invocation then, minus the deferred first invocation (init-phase noise left out)
            eager_ms = median(eagers, "eager_validators_ms")
            emit(f"{name}_eager_validators", eager_ms, "ms")
            emit(f"{name}_defer_build_buys", eager_ms + median(eagers, "first_invocation_ms") - first, "ms")
        if name == "messages":
            snapstart(python, env, runs)


def snapstart(python: str, env: dict[str, str], runs: int) -> None:
    """The messages function's cold request under SnapStart: after-restore hooks + first invocation."""
    snap_env = {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    probe_runs = [run(python, SNAPSTART_PROBE, snap_env) for _ in range(runs)]
    restore_ms, first_ms = median(probe_runs, "after_restore_ms"), median(probe_runs, "first_invocation_ms")
    cold = statistics.median(r["after_restore_ms"] + r["first_invocation_ms"] for r in probe_runs)
    log(
        f"functions.api.app under SnapStart: after-restore hooks {restore_ms:.1f} ms, first invocation "
        f"{first_ms:.0f} ms: cold request {cold:.0f} ms (target: at most 100)"
    )
    emit("messages_snapstart_after_restore", restore_ms, "ms")
    emit("messages_snapstart_first_invocation", first_ms, "ms")
    emit("messages_snapstart_cold_request", cold, "ms")


def database_secret(endpoint_url: str, database_url: str) -> str:
    """A Secrets Manager secret (on moto's server) in the RDS format, for ``database_url``; its ARN."""
    import boto3
    from psycopg.conninfo import conninfo_to_dict

    target = conninfo_to_dict(database_url)
    client = boto3.client(
        "secretsmanager",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    secret = {
        "username": target.get("user", "postgres"),
        "password": target.get("password", ""),
        "host": target["host"],
        "port": int(target.get("port") or 5432),
        "dbname": target["dbname"],
    }
    return client.create_secret(Name="bench-database", SecretString=json.dumps(secret))["ARN"]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args.pop(0)) if args and args[0].isdigit() else 5
    unknown = [a for a in args if a not in HANDLERS]
    if unknown:
        sys.exit(f"no such handler: {' '.join(unknown)} (one of {', '.join(HANDLERS)})")
    handlers = {n: m for n, m in HANDLERS.items() if not args or n in args}
    breakdown = "--breakdown" in sys.argv
    python = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--python=")), sys.executable)
    try:
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"--python={python}: cannot run it ({exc})")
    log(f"handlers run on Python {version} ({python})")
    import boto3

    from core.db.migrations import migrate
    from infra.local.postgres import start_embedded_postgres
    from infra.local.sqs import create_embedding_queues, start_moto_server

    scratch = Path(tempfile.mkdtemp(prefix="bench-cold-", dir="/tmp"))
    server = start_embedded_postgres(scratch / "pg")
    server.create_database("bench")
    url = server.database_url("bench")
    migrate(url)
    sqs = start_moto_server()
    sqs_client = boto3.client(
        "sqs",
        endpoint_url=sqs.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queues = create_embedding_queues(sqs_client, prefix="bench")
    secret_arn = database_secret(sqs.endpoint_url, url)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_SQS": sqs.endpoint_url,
        **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in queues.items()},
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": sqs.endpoint_url,
        "DATABASE_SECRET_ARN": secret_arn,
        "DATABASE_SSLMODE": "disable",  # a Unix socket here; TLS to RDS (Proxy) when deployed
        "MODEL_PLUGINS": "core.model_providers.scripted",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as template.yaml's Globals set it
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start-bench",  # set by Lambda from the init phase on: the GC pause needs it
    }
    env.pop("DATABASE_URL", None)  # it would win over the secret
    if "--no-bytecode-cache" not in sys.argv:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-cold-pyc-", dir="/tmp")
    try:
        for name, module in handlers.items():
            measure(python, name, module, env, url, runs)
            if breakdown:
                costs = ", ".join(f"{m} {ms:.1f}" for m, ms in own_breakdown(python, module, env))
                log(f"  {module}: own modules by self time (ms): {costs}")
    finally:
        sqs.stop()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if "PYTHONPYCACHEPREFIX" in env and env["PYTHONPYCACHEPREFIX"] != os.environ.get("PYTHONPYCACHEPREFIX"):
            shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)


if __name__ == "__main__":
    main()
