"""``memory_plugin``: reflection, the FACTS / RELATIONSHIPS / ENTITIES providers and retention workers.

Retention tasks are not created by the plugin (creating them is SQL, and registering a plugin
must cost none): call ``core.memory.retention.ensure_retention_tasks(runtime)`` once per agent,
e.g. from the migrate command or the scheduled function.
"""

from __future__ import annotations

from core.memory.providers import ENTITIES, FACTS, RELATIONSHIPS
from core.memory.reflection import reflection
from core.memory.retention import RETENTION_WORKERS
from core.plugin import Plugin

memory_plugin = Plugin(
    name="memory",
    description="Facts and relationships from reflection, their providers, and scheduled retention.",
    evaluators=(reflection,),
    providers=(FACTS, RELATIONSHIPS, ENTITIES),
    task_workers=RETENTION_WORKERS,
)
