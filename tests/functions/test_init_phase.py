"""functions.init_phase: each handler builds its init phase with the cyclic collector paused and
ends it with the objects it built frozen, so an invocation's full collection walks only what
invocations created. Fresh interpreters: the collector's state is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json, time
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
import {module}
during_init, enabled = len(collections), gc.isenabled()
started = time.perf_counter()
gc.collect()
print(json.dumps({{"collections_during_init": during_init, "enabled_after": enabled,
                  "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()),
                  "full_collection_ms": (time.perf_counter() - started) * 1000}}))
"""


def _run(code: str, database_url: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, with the test database and no SQS (not needed to build the handlers)."""
    env = {**os.environ, "DATABASE_URL": database_url, "MODEL_PLUGINS": "core.model_providers.scripted"}
    for name in [k for k in env if k.startswith("EMBEDDINGS_") and k.endswith("_QUEUE_URL")]:
        del env[name]
    env.pop("DATABASE_SECRET_ARN", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("module", ["functions.api.app", "functions.tasks", "functions.embeddings",
                                    "functions.migrate"])
def test_the_init_phase_runs_without_collections_and_ends_with_its_objects_frozen(module, database_url):
    done = _run(PROBE.format(module=module), database_url)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # Paused: only while the handler module itself is compiled, before its first statement (~100-200 otherwise).
    assert figures["collections_during_init"] < 10
    assert figures["enabled_after"]
    assert figures["frozen"] > 20_000  # modules, classes, the pool, the agents...
    assert figures["tracked"] < 1_000  # ...and nearly nothing left for a full collection to walk


FAILED_THEN_FINE = """
import gc, json, os
from core.errors import ConfigurationError
url = os.environ.pop("DATABASE_URL")
try:
    import functions.tasks
except ConfigurationError:
    paused_after_failure = not gc.isenabled()
os.environ["DATABASE_URL"] = url
import functions.embeddings
print(json.dumps({"paused_after_failure": paused_after_failure, "enabled_at_the_end": gc.isenabled()}))
"""


def test_a_failed_init_leaves_the_collector_paused_until_the_next_init_ends(database_url):
    done = _run(FAILED_THEN_FINE, database_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"paused_after_failure": True,
                                                                 "enabled_at_the_end": True}
