"""The AUTONOMY_STATUS provider and the /autonomy routes (elizaOS plugin-autonomy
``src/status-provider.ts``, ``src/routes.ts``).

Source: https://github.com/elizaOS/classified/tree/7f3e156b3182c1ff22058522ae927ee3286eac24/packages/plugin-autonomy/src
License: MIT, Copyright (c) 2025 Shaw Walters and elizaOS Contributors (ported to Python).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from core.plugin import Provider, ProviderResult, Route, RouteRequest
from core.types import Memory, State

from .service import AUTONOMY_SERVICE_TYPE, AutonomyService, autonomous_room_id, is_enabled

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

UNAVAILABLE = {"success": False, "error": "Autonomy service not available"}


def _service(runtime: AgentRuntime) -> AutonomyService | None:
    service = runtime.get_service(AUTONOMY_SERVICE_TYPE)
    return service if isinstance(service, AutonomyService) else None


async def _autonomy_status(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    """The status block in ordinary conversations; nothing in the autonomous room itself."""
    service = _service(runtime)
    if service is None or message.room_id == autonomous_room_id(runtime.agent_id):
        return ProviderResult()
    status = await service.get_status(runtime)
    running, enabled, interval = status["running"], status["enabled"], status["interval"]
    icon, text = (
        ("🤖", "running autonomously")
        if running
        else (("⏸️", "autonomy enabled but not running") if enabled else ("🔕", "autonomy disabled"))
    )
    seconds = round(interval / 1000)
    every = f"{seconds} seconds" if seconds < 60 else f"{round(seconds / 60)} minutes"
    return ProviderResult(
        text=f"[AUTONOMY_STATUS]\nCurrent status: {icon} {text}\nThinking interval: {every}\n[/AUTONOMY_STATUS]",
        data={
            "autonomyEnabled": enabled,
            "serviceRunning": running,
            "interval": interval,
            "intervalSeconds": seconds,
            "status": "running" if running else "enabled" if enabled else "disabled",
        },
    )


AUTONOMY_STATUS = Provider(
    name="AUTONOMY_STATUS",
    get=_autonomy_status,
    description="Provides current autonomy status for agent awareness in conversations",
)


async def _status(runtime: AgentRuntime, request: RouteRequest) -> dict[str, Any]:
    service = _service(runtime)
    if service is None:
        return UNAVAILABLE
    status = await service.get_status(runtime)
    data = {
        **status,
        "intervalSeconds": round(status["interval"] / 1000),
        "agentId": str(runtime.agent_id),
        "characterName": runtime.character.name or "Agent",
    }
    return {"success": True, "data": data}


async def _switch(runtime: AgentRuntime, on: bool | None) -> dict[str, Any]:
    """Enable (True), disable (False) or toggle (None), then report as upstream does."""
    service = _service(runtime)
    if service is None:
        return UNAVAILABLE
    on = (not await is_enabled(runtime)) if on is None else on
    await (service.start_loop(runtime) if on else service.stop_loop(runtime))
    status = await service.get_status(runtime)
    data = {k: status[k] for k in ("enabled", "running", "interval")}
    return {"success": True, "message": "Autonomy enabled" if on else "Autonomy disabled", "data": data}


async def _enable(runtime: AgentRuntime, request: RouteRequest) -> dict[str, Any]:
    return await _switch(runtime, True)


async def _disable(runtime: AgentRuntime, request: RouteRequest) -> dict[str, Any]:
    return await _switch(runtime, False)


async def _toggle(runtime: AgentRuntime, request: RouteRequest) -> dict[str, Any]:
    return await _switch(runtime, None)


class IntervalBody(BaseModel):
    """``{"interval": ms}``, 5 s to 10 min (upstream's bounds; a 422 here, a 400 there)."""

    interval: int = Field(ge=5000, le=600_000)


async def _interval(runtime: AgentRuntime, request: RouteRequest) -> dict[str, Any]:
    service = _service(runtime)
    if service is None:
        return UNAVAILABLE
    interval = await service.set_loop_interval(runtime, request.body.interval)
    data = {"interval": interval, "intervalSeconds": round(interval / 1000)}
    return {"success": True, "message": "Interval updated", "data": data}


AUTONOMY_ROUTES = (
    Route(method="GET", path="/autonomy/status", handler=_status),
    Route(method="POST", path="/autonomy/enable", handler=_enable),
    Route(method="POST", path="/autonomy/disable", handler=_disable),
    Route(method="POST", path="/autonomy/toggle", handler=_toggle),
    Route(method="POST", path="/autonomy/interval", handler=_interval, body_model=IntervalBody),
)
