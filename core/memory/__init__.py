"""What an agent remembers beyond messages: facts, relationships, reflection and retention.

* ``core.memory.facts``: the ``Fact`` type, de-duplication key and confidence rule.
* ``core.memory.reflection``: the REFLECTION evaluator (facts and relationships from a conversation).
* ``core.memory.providers``: FACTS, RELATIONSHIPS and ENTITIES.
* ``core.memory.retention``: scheduled message compression, fact consolidation and orphan clean-up.
* ``core.memory.plugin``: ``memory_plugin``, all of the above as one plugin.

Nothing is imported here eagerly: ``core.db.adapter`` imports ``core.memory.facts``, and the
plugin imports the runtime, which imports the adapter.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "memory_plugin":
        from core.memory.plugin import memory_plugin

        return memory_plugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
