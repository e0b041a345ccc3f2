"""functions.snapstart: under SnapStart, a container closes its pool before the snapshot and opens a
new one after each restore; elsewhere it registers nothing. The hooks run as Lambda's runtime runs
them: taken from ``snapshot_restore_py``'s registries, before-snapshot ones in reverse order."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import snapshot_restore_py
from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict

from core.deployment.container import Container
from core.errors import ConfigurationError
from core.settings import Settings
from functions.snapstart import build_deferred_validators, register_snapstart_hooks

ROOT = Path(__file__).resolve().parents[2]
APPLICATION_NAME = "snapstart-test"  # marks this test's connections in pg_stat_activity


def take_snapshot() -> None:
    """What Lambda runs before a SnapStart snapshot (AWS Lambda developer guide, runtime hooks for Python)."""
    for hook, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
        hook(*args, **kwargs)


def restore() -> None:
    """What Lambda runs after restoring a copy of the snapshot."""
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)


@pytest.fixture
def hook_registries():
    """Empty registries for the test, and the previous content back afterwards."""
    registries = (snapshot_restore_py.get_before_snapshot(), snapshot_restore_py.get_after_restore())
    saved = [registry.copy() for registry in registries]
    for registry in registries:
        registry.clear()
    yield
    for registry, content in zip(registries, saved, strict=True):
        registry[:] = content


@pytest.fixture
def snap_start(monkeypatch, hook_registries):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")


@pytest.fixture
def container(database_url, hook_registries):
    url = make_conninfo(database_url, application_name=APPLICATION_NAME)
    built = Container(Settings(database_url=url, model_plugins=["core.model_providers.scripted"]))
    register_snapstart_hooks(built)  # as functions.init_phase.build_container does
    yield built
    built.close()


def open_connections(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APPLICATION_NAME,)
        ).fetchone()
    return row[0]


@pytest.mark.parametrize("initialization_type", [None, "on-demand", "provisioned-concurrency"])
def test_no_hooks_without_snapstart(monkeypatch, container, initialization_type):
    if initialization_type is None:
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    else:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", initialization_type)
    assert register_snapstart_hooks(container) is False
    assert snapshot_restore_py.get_before_snapshot() == []
    assert snapshot_restore_py.get_after_restore() == []


def test_container_registers_its_hooks_under_snapstart(snap_start, container):
    assert [hook for hook, _, _ in snapshot_restore_py.get_before_snapshot()] == [
        build_deferred_validators,
        container.before_snapshot,
    ]  # run in reverse: the pool closes last
    assert [hook for hook, _, _ in snapshot_restore_py.get_after_restore()] == [container.after_restore]


def test_snapshot_holds_no_connection_and_restore_opens_a_new_pool(snap_start, container, database_url):
    container.run(container.adapter.get_agents())  # database work, as the init phase does
    assert open_connections(database_url) == 1  # its connection, idle in the pool
    old_pool = container.pool

    take_snapshot()
    assert old_pool.closed
    assert open_connections(database_url) == 0  # nothing open goes into the snapshot

    restore()
    assert container.pool is not old_pool and not container.pool.closed
    assert container.adapter.pool is container.pool
    container.run(container.adapter.get_agents())  # connects on first use
    assert open_connections(database_url) == 1


def test_restore_reseeds_random(snap_start, container):
    random.seed(7)  # the state every restored copy would share
    shared_next = random.Random(7).random()
    take_snapshot()
    restore()
    assert random.random() != shared_next


def test_snapstart_without_the_hooks_library_is_a_configuration_error(snap_start, monkeypatch, container):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # makes its import raise ImportError
    with pytest.raises(ConfigurationError, match="snapshot_restore_py"):
        register_snapstart_hooks(container)


MESSAGES_UNDER_SNAPSTART = """
import json
import snapshot_restore_py
import functions.api.app as fn
from core.model_providers.scripted import models
from core.types import ModelType
from core.types.wire import MessageBody
from tests.factories import FakeContext, http_event

deferred_at_init = not MessageBody.__pydantic_complete__
for hook, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
    hook(*args, **kwargs)
snapshot_pool_closed = fn.container.pool.closed
built_for_snapshot = MessageBody.__pydantic_complete__
for hook, args, kwargs in snapshot_restore_py.get_after_restore():
    hook(*args, **kwargs)
models.script(ModelType.TEXT_LARGE, "<response><actions>REPLY</actions><text>Restored.</text></response>")
answer = fn.handler(http_event("POST", "/agents/Eliza/messages", {"text": "Hello after a restore"}), FakeContext())
print(json.dumps({"snapshot_pool_closed": snapshot_pool_closed, "status": answer["statusCode"],
                  "deferred_at_init": deferred_at_init, "built_for_snapshot": built_for_snapshot,
                  "body": json.loads(answer["body"])}))
"""


def test_messages_function_answers_after_a_restore(database_url):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MODEL_PLUGINS": "core.model_providers.scripted",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    }
    for name in [k for k in env if k.startswith("EMBEDDINGS_") and k.endswith("_QUEUE_URL")]:
        del env[name]  # no SQS needed: embeddings stay pending
    env.pop("DATABASE_SECRET_ARN", None)
    result = subprocess.run(
        [sys.executable, "-c", MESSAGES_UNDER_SNAPSTART], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["snapshot_pool_closed"] is True
    # The request body's validator: deferred in the init phase, built before the snapshot.
    assert outcome["deferred_at_init"] is True and outcome["built_for_snapshot"] is True
    assert outcome["status"] == 200, outcome
    assert "Restored." in json.dumps(outcome["body"])


class Deferred(BaseModel):
    """A model whose validator pydantic builds on first use."""

    model_config = ConfigDict(defer_build=True)
    text: str


def test_build_deferred_validators_builds_only_the_named_packages():
    assert not Deferred.__pydantic_complete__
    build_deferred_validators(packages=("core",))
    assert not Deferred.__pydantic_complete__  # not one of the packages named
    assert build_deferred_validators(packages=("tests",)) >= 1
    assert Deferred.__pydantic_complete__
    assert Deferred(text="built").text == "built"
    assert build_deferred_validators(packages=("tests",)) == 0  # nothing left to build
