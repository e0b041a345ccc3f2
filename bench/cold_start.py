"""Cold start of each handler: import + init phase, against the bare import of its dependencies.

For each handler module, a fresh interpreter imports it (running its init phase against an
embedded Postgres, with the scripted model provider: hosted providers' clients are built
lazily), and another fresh interpreter imports exactly the third-party modules the first one
ended up loading. The difference is our own cost. Median of several runs each.

Like for like: both interpreters read compiled bytecode. The dependencies' ``.pyc`` files
were written when they were installed, while this project's modules are compiled from source
on every import when ``PYTHONDONTWRITEBYTECODE`` is set (as in this workspace): compiling
would then count as our cost and theirs would not. So every run uses one private bytecode
cache (``PYTHONPYCACHEPREFIX``, a temporary directory: the source tree is not touched), filled
by an unmeasured warm-up run of each interpreter; ``--no-bytecode-cache`` measures without.
(A Lambda package should ship ``.pyc`` files compiled by the runtime's Python for the same
reason: Lambda's file system is read-only, nothing is cached between cold starts.)

Configuration as deployed: the embedding queues exist (moto's SQS server, as the local stack
runs it) and their URLs are set, so the handlers build their SQS client in the init phase,
as in Lambda (boto3 then counts among the dependencies, the client's creation as our init).
The database credentials are read from a Secrets Manager secret (``DATABASE_SECRET_ARN``, on
moto's server too) in the init phase, as deployed.

Cold start does not end with the init phase: models built lazily (pydantic ``defer_build``)
and first-use work land on the first invocation. So the messages function is also invoked,
once cold and once warm, with a real API Gateway event (``POST .../messages``, scripted model):
``messages_first_invocation`` and ``messages_warm_invocation`` (ms). Under Lambda SnapStart
(``functions.snapstart``) a cold request skips the init phase and pays the after-restore hooks and
a first invocation instead: ``messages_snapstart_after_restore`` and
``messages_snapstart_first_invocation`` (ms), and ``messages_snapstart_cold_request_ratio``, their
sum over init phase + first invocation without SnapStart (Lambda's own restore time not included:
it cannot be measured here).

Prints JSON lines per handler: bare dependency import (ms), handler import + init (ms), and
our overhead as a fraction of the bare import (target: at most 0.25), from the medians of wall
time, and (``_cpu``) of the processes' CPU time: steadier when other work shares the machine,
but without the waits on the database of the init phase. Also: the time spent making AWS SDK
clients in the init phase (``sdk_clients``, ms; ``core.aws.client`` timed) and the ratio without
it, and what pausing the garbage collector saves on the dependencies' import
(``gc_pause_saving``, ms). ``--breakdown`` also
prints, per handler, this project's modules that cost the most (self time of
``python -X importtime``, which includes the init work done while the module is imported).

Which Python: the handlers run on ``--python=PATH`` (default: this interpreter), which must have
the runtime dependencies and ``snapshot_restore_py``. ``make bench`` passes ``.venv-lambda``'s, a
venv of Lambda's runtime version (python3.12, as ``template.yaml``) with the runtime dependencies
alone; the embedded Postgres and moto's server always run from this interpreter.

Run: ``.venv/bin/python bench/cold_start.py [runs] [handler ...] [--python=PATH] [--breakdown]
[--no-bytecode-cache]`` (default 5 runs of every handler; ``handler`` is e.g. ``messages``).
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

from _report import emit  # bench/_report.py: run as a script, bench/ is on sys.path

HANDLERS = ("functions.api.app", "functions.embeddings", "functions.migrate", "functions.tasks")
OURS = ("core", "functions", "infra", "tests", "bench")

PROBE = """
import json, sys, time
import core.aws  # tiny (boto3 is imported on the first client): timed below, around the SDK's client creation
sdk_ms, make_client = [0.0], core.aws.client
def timed_client(*args, **kwargs):
    started = time.perf_counter()
    try:
        return make_client(*args, **kwargs)
    finally:
        sdk_ms[0] += (time.perf_counter() - started) * 1000
core.aws.client = timed_client
t0, c0 = time.perf_counter(), time.process_time()
import {module}
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
init_sdk_ms = sdk_ms[0]
stdlib = set(sys.stdlib_module_names)
third_party = sorted(m for m in sys.modules
                     if m.split('.')[0] not in stdlib and m.split('.')[0] not in {ours} and not m.startswith('_'))
print(json.dumps({{"ms": elapsed * 1000, "cpu_ms": cpu * 1000, "sdk_clients_ms": init_sdk_ms, "modules": third_party,
                  **invoke_{name}()}}))
"""
#: What each handler's probe does after its init phase: ``{name}`` is the handler module's last part.
INVOKE = {
    "messages": """
def invoke_messages():
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
NO_INVOCATION = "def invoke_{name}():\n    return {{}}\n"
#: The messages function under Lambda SnapStart: init phase (not measured: it runs when a version is
#: published), the runtime's before-snapshot hooks, then what a cold request pays after a restore: the
#: after-restore hooks and the first invocation (a new pool connects, reading the secret again).
SNAPSTART_PROBE = "import json, time\n" + INVOKE["messages"] + """
import snapshot_restore_py
import functions.api.app
for hook, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
    hook(*args, **kwargs)
started = time.perf_counter()
for hook, args, kwargs in snapshot_restore_py.get_after_restore():
    hook(*args, **kwargs)
print(json.dumps({"after_restore_ms": (time.perf_counter() - started) * 1000, **invoke_messages()}))
"""
#: The bare import of the dependencies, with the cyclic collector paused as in the handlers'
#: init phase (``functions.init_phase``) unless ``{gc_on}``: so the ratio compares our code alone.
BARE = """
import gc, importlib, json, sys, time
names = json.loads(sys.stdin.read())
if not {gc_on}:
    gc.disable()
t0, c0 = time.perf_counter(), time.process_time()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print(json.dumps({{"ms": (time.perf_counter() - t0) * 1000, "cpu_ms": (time.process_time() - c0) * 1000}}))
"""


def run(python: str, code: str, env: dict[str, str], stdin: str = "") -> dict:
    result = subprocess.run([python, "-c", code], env=env, input=stdin, capture_output=True, text=True,
                            timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def own_breakdown(python: str, module: str, env: dict[str, str], top: int = 12) -> list[tuple[str, float]]:
    """This project's modules by self time (ms) while ``module`` is imported, costliest first."""
    result = subprocess.run([python, "-X", "importtime", "-c", f"import {module}"], env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    costs: list[tuple[str, float]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if self_us.isdigit() and name.split(".")[0] in OURS:
            costs.append((name, int(self_us) / 1000))
    return sorted(costs, key=lambda c: c[1], reverse=True)[:top]


def snapstart(python: str, env: dict[str, str], runs: int, cold_request_ms: float) -> None:
    """The messages function's cold request under SnapStart, against ``cold_request_ms`` without it."""
    snap_env = {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    probe_runs = [run(python, SNAPSTART_PROBE, snap_env) for _ in range(runs)]
    restore_ms = statistics.median(r["after_restore_ms"] for r in probe_runs)
    first_ms = statistics.median(r["first_invocation_ms"] for r in probe_runs)
    print(f"functions.api.app under SnapStart: after-restore hooks {restore_ms:.1f} ms, first invocation "
          f"{first_ms:.0f} ms (without SnapStart: init phase + first invocation {cold_request_ms:.0f} ms)",
          file=sys.stderr)
    emit("messages_snapstart_after_restore", restore_ms, "ms")
    emit("messages_snapstart_first_invocation", first_ms, "ms")
    emit("messages_snapstart_cold_request_ratio", (restore_ms + first_ms) / cold_request_ms, "ratio")


def database_secret(endpoint_url: str, database_url: str) -> str:
    """A Secrets Manager secret (on moto's server) in the RDS format, for ``database_url``; its ARN."""
    import boto3
    from psycopg.conninfo import conninfo_to_dict

    target = conninfo_to_dict(database_url)
    client = boto3.client("secretsmanager", endpoint_url=endpoint_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    secret = {"username": target.get("user", "postgres"), "password": target.get("password", ""),
              "host": target["host"], "port": int(target.get("port") or 5432), "dbname": target["dbname"]}
    return client.create_secret(Name="bench-database", SecretString=json.dumps(secret))["ARN"]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args.pop(0)) if args and args[0].isdigit() else 5
    handlers = [m for m in HANDLERS if not args or m.split(".")[-1] in args]
    if not handlers:
        sys.exit(f"no such handler: {' '.join(args)} (one of {', '.join(m.split('.')[-1] for m in HANDLERS)})")
    breakdown = "--breakdown" in sys.argv
    python = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--python=")), sys.executable)
    try:
        version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"--python={python}: cannot run it ({exc})")
    print(f"handlers run on Python {version} ({python})", file=sys.stderr)
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
    sqs_client = boto3.client("sqs", endpoint_url=sqs.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
    queues = create_embedding_queues(sqs_client, prefix="bench")
    secret_arn = database_secret(sqs.endpoint_url, url)
    env = {**os.environ, "AWS_ENDPOINT_URL_SQS": sqs.endpoint_url,
           **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in queues.items()},
           "AWS_ENDPOINT_URL_SECRETS_MANAGER": sqs.endpoint_url, "DATABASE_SECRET_ARN": secret_arn,
           "DATABASE_SSLMODE": "disable",  # a Unix socket here; TLS to RDS (Proxy) when deployed
           "MODEL_PLUGINS": "core.model_providers.scripted",
           "POWERTOOLS_METRICS_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
           "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as template.yaml's Globals set it
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    env.pop("DATABASE_URL", None)  # it would win over the secret
    if "--no-bytecode-cache" not in sys.argv:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-cold-pyc-", dir="/tmp")
    try:
        for module in handlers:
            name = module.split(".")[-1]
            probe = (INVOKE.get(name) or NO_INVOCATION.format(name=name)) + PROBE.format(
                module=module, ours=repr(set(OURS)), name=name)
            try:
                warm = run(python, probe, env)  # fills the bytecode cache; not measured
            except subprocess.CalledProcessError as exc:
                print(f"{module}: skipped ({exc.stderr.strip().splitlines()[-1]})", file=sys.stderr)
                continue
            modules = json.dumps(warm["modules"])
            bare, bare_gc_on = BARE.format(gc_on=False), BARE.format(gc_on=True)
            run(python, bare, env, modules)
            probe_runs, bare_runs, gc_on_runs = [], [], []
            for _ in range(runs):  # alternated, so that a busy moment of the machine hits all
                probe_runs.append(run(python, probe, env))
                bare_runs.append(run(python, bare, env, modules))
                gc_on_runs.append(run(python, bare_gc_on, env, modules))
            probes, bare_ms = [r["ms"] for r in probe_runs], [r["ms"] for r in bare_runs]
            total, deps = statistics.median(probes), statistics.median(bare_ms)
            print(f"{module}: import+init {total:.0f} ms, dependencies alone {deps:.0f} ms (wall)", file=sys.stderr)
            emit(f"{name}_dependencies_import", deps, "ms")
            emit(f"{name}_import_and_init", total, "ms")
            emit(f"{name}_own_overhead_ratio", (total - deps) / deps, "ratio")
            # The AWS SDK's clients: about 35 ms for the first one (botocore parses endpoints.json, registers
            # its handlers), little for the next. boto3's import is not in it: it counts among
            # the dependencies, and Powertools' SecretsProvider imports it before the first client.
            sdk_ms = statistics.median(r["sdk_clients_ms"] for r in probe_runs)
            emit(f"{name}_sdk_clients", sdk_ms, "ms")
            emit(f"{name}_own_overhead_ratio_without_sdk_clients", (total - sdk_ms - deps) / deps, "ratio")
            # What pausing the collector saves on the dependencies' import alone (our modules gain too).
            emit(f"{name}_gc_pause_saving", statistics.median(r["ms"] for r in gc_on_runs) - deps, "ms")
            # CPU time (user + system) of the process: what other work on a busy machine disturbs least,
            # but it leaves out the init phase's waits on the database.
            cpu_total = statistics.median(r["cpu_ms"] for r in probe_runs)
            cpu_deps = statistics.median(r["cpu_ms"] for r in bare_runs)
            emit(f"{name}_own_overhead_ratio_cpu", (cpu_total - cpu_deps) / cpu_deps, "ratio")
            for call in ("first", "warm"):
                if f"{call}_invocation_ms" in probe_runs[0]:
                    invocation_ms = statistics.median(r[f"{call}_invocation_ms"] for r in probe_runs)
                    emit(f"{name}_{call}_invocation", invocation_ms, "ms")
            if name == "messages":
                snapstart(python, env, runs, total + statistics.median(r["first_invocation_ms"] for r in probe_runs))
            if breakdown:
                costs = ", ".join(f"{m} {ms:.1f}" for m, ms in own_breakdown(python, module, env))
                print(f"  {module}: own modules by self time (ms): {costs}", file=sys.stderr)
    finally:
        sqs.stop()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if "PYTHONPYCACHEPREFIX" in env and env["PYTHONPYCACHEPREFIX"] != os.environ.get("PYTHONPYCACHEPREFIX"):
            shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)


if __name__ == "__main__":
    main()
