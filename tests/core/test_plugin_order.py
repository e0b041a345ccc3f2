from __future__ import annotations

import pytest

from core.blueprint import AgentBlueprint
from core.character import load_character_dict
from core.errors import ConfigurationError
from core.plugin import Plugin
from core.plugin_order import order_plugins


def names(plugins):
    return [p.name for p in plugins]


def test_dependencies_come_first_then_priority_then_given_order():
    plugins = [
        Plugin(name="app", dependencies=("sql", "openai")),
        Plugin(name="openai"),
        Plugin(name="sql", priority=5),
        Plugin(name="bootstrap"),
    ]
    # sql first (priority); app as soon as its dependencies are placed (it was named first).
    assert names(order_plugins(plugins)) == ["sql", "openai", "app", "bootstrap"]


def test_a_chain_is_resolved_whatever_the_input_order():
    plugins = [Plugin(name="c", dependencies=("b",)), Plugin(name="b", dependencies=("a",)), Plugin(name="a")]
    assert names(order_plugins(plugins)) == ["a", "b", "c"]


def test_missing_dependency_names_both_plugins():
    with pytest.raises(ConfigurationError, match="knowledge depends on sql"):
        order_plugins([Plugin(name="knowledge", dependencies=("sql",))])


def test_cycle_names_the_plugins_in_it():
    plugins = [Plugin(name="a", dependencies=("b",)), Plugin(name="b", dependencies=("a",)), Plugin(name="free")]
    with pytest.raises(ConfigurationError, match="cycle: a, b"):
        order_plugins(plugins)


def test_nameless_plugin_and_duplicates(caplog):
    with pytest.raises(ConfigurationError, match="must have a name"):
        order_plugins([Plugin(name="")])
    first, second = Plugin(name="x", description="first"), Plugin(name="x", description="second")
    assert order_plugins([first, second]) == [first]
    assert "named twice" in caplog.text


def test_the_blueprint_registers_in_dependency_order():
    character = load_character_dict({"name": "Order", "bio": ["test"]})
    blueprint = AgentBlueprint.build(character, [Plugin(name="app", dependencies=("base",)), Plugin(name="base")])
    assert names(blueprint.plugins) == ["base", "app"]
