"""elizaOS plugin-experience, ported: the agent records transferable learnings and recalls them.

Source: https://github.com/elizaOS/classified/tree/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-experience
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python).
Differences from upstream: tests/ported_plugins/README.md.
"""

from __future__ import annotations

from core.plugin import Plugin

from .components import EXPERIENCE_EVALUATOR, EXPERIENCE_PROVIDER, RECORD_EXPERIENCE
from .service import ExperienceService

experience_plugin = Plugin(
    name="experience",
    description="Self-learning experience system that records experiences and learns from agent interactions",
    actions=(RECORD_EXPERIENCE,),
    providers=(EXPERIENCE_PROVIDER,),
    evaluators=(EXPERIENCE_EVALUATOR,),
    services=(ExperienceService,),
)
plugin = experience_plugin
