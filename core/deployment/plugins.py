"""What a deployment runs: its characters and every plugin they need (no database, no pool).

Kept apart from ``core.deployment.container`` so that the migrate function, which needs the
plugins' migrations and nothing of the runtime, does not load the database adapter in its
init phase (about 30 ms).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.blueprint import character_plugins, resolve_plugin
from core.bootstrap import plugin as bootstrap_plugin
from core.character import default_character_path, load_characters
from core.knowledge.provider import knowledge_plugin
from core.memory.plugin import memory_plugin

if TYPE_CHECKING:
    from core.character import Character
    from core.plugin import Plugin
    from core.settings import Settings


def configured_characters(settings: Settings) -> list[Character]:
    """Characters from ``CHARACTERS``, or the project's default character (Eliza).

    Raises:
        CharacterError: a file is missing, empty or invalid (the message names file and field).
    """
    paths = settings.character_paths or [str(default_character_path())]
    return [c for path in paths for c in load_characters(Path(path))]


def deployment_plugins(settings: Settings) -> list[Plugin]:
    """Every plugin this deployment runs: built-in, model plugins, then those the characters name (once each).

    The migrate command applies their migrations; the request path never does.
    """
    plugins = [*built_in_plugins(), *(resolve_plugin(p) for p in settings.model_plugins)]
    plugins += [p for c in configured_characters(settings) for p in character_plugins(c)]
    return list({p.name: p for p in plugins}.values())


def built_in_plugins() -> list[Plugin]:
    """What every agent has: bootstrap (REPLY, IGNORE...), knowledge (documents), memory (facts, reflection)."""
    return [bootstrap_plugin, knowledge_plugin, memory_plugin]
