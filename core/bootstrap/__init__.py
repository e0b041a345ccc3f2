"""The built-in plugin (elizaOS ``plugin-bootstrap``): REPLY, IGNORE, NONE; CHARACTER, RECENT_MESSAGES, ACTIONS."""

from __future__ import annotations

from core.bootstrap.actions import IGNORE, NONE, REPLY
from core.bootstrap.providers import ACTIONS, CHARACTER, RECENT_MESSAGES
from core.plugin import Plugin

plugin = Plugin(
    name="bootstrap",
    description="Core actions and providers every agent has.",
    actions=(REPLY, IGNORE, NONE),
    providers=(CHARACTER, RECENT_MESSAGES, ACTIONS),
)

__all__ = ["plugin"]
