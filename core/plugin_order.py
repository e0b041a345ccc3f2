"""Plugin registration order: dependencies first, then by priority (elizaOS ``resolvePluginDependencies``).

elizaOS skips a plugin whose dependency is missing and silently breaks cycles; here both
are errors that name the plugins, found in the init phase rather than at the first request.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable

from core.errors import ConfigurationError
from core.plugin import Plugin

logger = logging.getLogger(__name__)


def order_plugins(plugins: Iterable[Plugin]) -> list[Plugin]:
    """Sort plugins so every plugin comes after its dependencies.

    Among plugins whose dependencies are all placed, higher ``priority`` goes first, then
    the order given. A plugin named twice keeps its first occurrence (with a warning).

    Args:
        plugins: Plugins in the order they were named.

    Returns:
        The same plugins in registration order.

    Raises:
        ConfigurationError: a plugin has no name, depends on a plugin that is not there, or
            plugins depend on each other in a cycle (the message names them).
    """
    by_name: dict[str, tuple[int, Plugin]] = {}
    for index, plugin in enumerate(plugins):
        if not plugin.name:
            raise ConfigurationError("a plugin must have a name")
        if plugin.name in by_name:
            logger.warning("plugin %s is named twice; the second is skipped", plugin.name)
            continue
        by_name[plugin.name] = (index, plugin)
    for _, plugin in by_name.values():
        missing = [d for d in plugin.dependencies if d not in by_name]
        if missing:
            raise ConfigurationError(f"plugin {plugin.name} depends on {', '.join(missing)}, which is not registered")

    waiting = {name: set(p.dependencies) for name, (_, p) in by_name.items()}
    ready = [(-p.priority, i, name) for name, (i, p) in by_name.items() if not waiting[name]]
    heapq.heapify(ready)
    ordered: list[Plugin] = []
    while ready:
        _, _, name = heapq.heappop(ready)
        ordered.append(by_name[name][1])
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    index, plugin = by_name[other]
                    heapq.heappush(ready, (-plugin.priority, index, other))
    if len(ordered) < len(by_name):
        stuck = sorted(set(by_name) - {p.name for p in ordered})
        raise ConfigurationError(f"plugins depend on each other in a cycle: {', '.join(stuck)}")
    return ordered
