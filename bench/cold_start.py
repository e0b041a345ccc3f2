"""Cold start of each handler: import + init phase, against the bare import of its dependencies.

For each handler module, a fresh interpreter imports it (running its init phase against an
embedded Postgres, with the scripted model provider: hosted providers' clients are built
lazily), and another fresh interpreter imports exactly the third-party modules the first one
ended up loading. The difference is our own cost. Median of several runs each.

Prints JSON lines per handler: bare dependency import (ms), handler import + init (ms), and
our overhead as a fraction of the bare import (target: at most 0.25).

Run: ``.venv/bin/python bench/cold_start.py [runs]`` (default 5).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import emit  # bench/_report.py: run as a script, bench/ is on sys.path

HANDLERS = ("functions.messages", "functions.embeddings", "functions.migrate", "functions.tasks")
OURS = ("core", "functions", "infra", "tests", "bench")

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t0
stdlib = set(sys.stdlib_module_names)
third_party = sorted(m for m in sys.modules
                     if m.split('.')[0] not in stdlib and m.split('.')[0] not in {ours} and not m.startswith('_'))
print(json.dumps({{"ms": elapsed * 1000, "modules": third_party}}))
"""
BARE = """
import importlib, json, sys, time
names = json.loads(sys.stdin.read())
t0 = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000}))
"""


def run(code: str, env: dict[str, str], stdin: str = "") -> dict:
    result = subprocess.run([sys.executable, "-c", code], env=env, input=stdin, capture_output=True, text=True,
                            timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    from core.db.migrations import migrate
    from infra.local.postgres import start_embedded_postgres

    server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="bench-cold-", dir="/tmp")) / "pg")
    server.create_database("bench")
    url = server.database_url("bench")
    migrate(url)
    env = {**os.environ, "DATABASE_URL": url, "MODEL_PLUGINS": "core.model_providers.scripted",
           "POWERTOOLS_METRICS_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    try:
        for module in HANDLERS:
            try:
                probes = [run(PROBE.format(module=module, ours=repr(set(OURS))), env) for _ in range(runs)]
            except subprocess.CalledProcessError as exc:
                print(f"{module}: skipped ({exc.stderr.strip().splitlines()[-1]})", file=sys.stderr)
                continue
            bare = [run(BARE, env, json.dumps(probes[0]["modules"]))["ms"] for _ in range(runs)]
            total, deps = statistics.median(p["ms"] for p in probes), statistics.median(bare)
            name = module.split(".")[-1]
            print(f"{module}: import+init {total:.0f} ms, dependencies alone {deps:.0f} ms", file=sys.stderr)
            emit(f"{name}_dependencies_import", deps, "ms")
            emit(f"{name}_import_and_init", total, "ms")
            emit(f"{name}_own_overhead_ratio", (total - deps) / deps, "ratio")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
