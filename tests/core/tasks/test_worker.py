"""``TaskWorker`` and its registration through plugins and blueprints."""

from __future__ import annotations

import logging

import pytest

from core.blueprint import AgentBlueprint
from core.character import Character
from core.plugin import Plugin
from core.tasks.worker import TaskWorker


async def _noop(runtime, options, task) -> None:
    return None


def test_a_worker_needs_a_name():
    with pytest.raises(ValueError):
        TaskWorker("", _noop)


def test_plugins_register_their_workers_per_agent(caplog):
    first, second, other = TaskWorker("A", _noop), TaskWorker("A", _noop), TaskWorker("B", _noop)
    blueprint = AgentBlueprint.build(Character(name="W"), [Plugin(name="p1", task_workers=(first, other))])
    assert blueprint.task_workers == {"A": first, "B": other}
    assert AgentBlueprint.build(Character(name="V"), []).task_workers == {}  # another agent, no plugin
    with caplog.at_level(logging.WARNING, logger="core.blueprint"):
        blueprint.register_task_worker(first)  # the same worker again: nothing to say
        assert caplog.records == []
        blueprint.register_plugin(Plugin(name="p2", task_workers=(second,)))
    assert blueprint.task_workers["A"] is second
    assert "task worker A of W is replaced" in caplog.text
