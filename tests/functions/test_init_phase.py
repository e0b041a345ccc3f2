"""The init phase's collector pause (functions/__init__.py): whatever a handler's init phase does,
the collector runs again once it is over, also after another handler's failed init. Fresh
interpreters: the collector's state is process-wide. (What the pause buys is bench/cold_start.py's.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json
import {module}
print(json.dumps({{"enabled_after": gc.isenabled()}}))
"""


def _run(code: str, database_url: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, with the test database and no SQS (not needed to build the handlers)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MODEL_PLUGINS": "core.model_providers.scripted",
        "AWS_LAMBDA_FUNCTION_NAME": "init-phase-test",
    }  # as in Lambda, where the pause applies
    for name in [k for k in env if k.startswith("EMBEDDINGS_") and k.endswith("_QUEUE_URL")]:
        del env[name]
    env.pop("DATABASE_SECRET_ARN", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "module", ["functions.api.app", "functions.tasks", "functions.embeddings", "functions.migrate"]
)
def test_the_collector_runs_again_once_a_handler_init_phase_is_over(module, database_url):
    done = _run(PROBE.format(module=module), database_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"enabled_after": True}


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
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "paused_after_failure": True,
        "enabled_at_the_end": True,
    }


def test_outside_lambda_importing_a_functions_module_leaves_the_collector_running(database_url):
    """The local stack and the tests import ``functions.log_format``: no pause there."""
    code = "import gc, json, functions.log_format\nprint(json.dumps({'enabled': gc.isenabled()}))"
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"enabled": True}
