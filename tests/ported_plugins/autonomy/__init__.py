"""elizaOS plugin-autonomy, ported: a service that makes the agent think on its own, each
thought a message turn started by a ``MESSAGE_RECEIVED`` event, switched on and off by routes.

Source: https://github.com/elizaOS/classified/tree/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-autonomy
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python).
Differences from upstream: tests/ported_plugins/README.md.
"""

from __future__ import annotations

from core.plugin import Plugin
from core.tasks.worker import TaskWorker

from .components import AUTONOMY_ROUTES, AUTONOMY_STATUS
from .service import THINK_TASK, AutonomyService, perform_autonomous_think

autonomy_plugin = Plugin(
    name="autonomy",
    description="Clean autonomous loop plugin with settings-based control",
    services=(AutonomyService,),
    providers=(AUTONOMY_STATUS,),
    routes=AUTONOMY_ROUTES,
    task_workers=(TaskWorker(name=THINK_TASK, execute=perform_autonomous_think),),
)
plugin = autonomy_plugin
