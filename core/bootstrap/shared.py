"""What several built-in providers and actions share: one room/world read per turn, roles, world settings.

After elizaOS ``plugin-bootstrap/src/providers/shared-cache.ts`` (``getCachedRoom``,
``getCachedWorld``) and ``packages/core/src/roles.ts`` / ``settings.ts`` (``getUserServerRole``,
``findWorldsForOwner``). elizaOS caches rooms and worlds per process for minutes; here the cache
lives as long as the runtime (one invocation), so ROLES, SETTINGS and WORLD read a room once per
turn between them and a change made by another container is seen on the next turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID
from weakref import WeakKeyDictionary

from core.db.adapter import ParticipantUserState
from core.types import Entity, Room, World

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

T = TypeVar("T")

#: elizaOS ``booleanFooter``: the last line of a YES/NO template.
BOOLEAN_FOOTER = "Respond with only a YES or a NO."

_memo: WeakKeyDictionary[Any, dict[tuple[str, UUID], asyncio.Future[Any]]] = WeakKeyDictionary()


class Role(StrEnum):
    """elizaOS ``Role``: a person's role in a world (``world.metadata.roles[entityId]``)."""

    OWNER = "OWNER"
    ADMIN = "ADMIN"
    NONE = "NONE"


async def _once(runtime: AgentRuntime, key: tuple[str, UUID], read: Callable[[], Awaitable[T]]) -> T:
    # Concurrent providers share the in-flight read, as elizaOS's shared cache does.
    futures = _memo.setdefault(runtime, {})
    if key not in futures:
        futures[key] = asyncio.ensure_future(read())
    result: T = await asyncio.shield(futures[key])
    return result


async def cached_room(runtime: AgentRuntime, room_id: UUID) -> Room | None:
    """``runtime.get_room(room_id)``, read once per runtime."""
    return await _once(runtime, ("room", room_id), lambda: runtime.get_room(room_id))


async def cached_room_entities(runtime: AgentRuntime, room_id: UUID) -> list[Entity]:
    """The room's participants with their components, read once per runtime: RECENT_MESSAGES takes
    the senders' names from it, ENTITIES the rest, so neither waits on the other's query."""
    return await _once(
        runtime, ("room_entities", room_id), lambda: runtime.get_entities_for_room(room_id, include_components=True)
    )


async def cached_world(runtime: AgentRuntime, world_id: UUID) -> World | None:
    """``runtime.get_world(world_id)``, read once per runtime."""
    return await _once(runtime, ("world", world_id), lambda: runtime.get_world(world_id))


async def cached_agent_state(runtime: AgentRuntime, room_id: UUID) -> ParticipantUserState | None:
    """The agent's own state in the room (FOLLOWED, MUTED, ``None``), read once per runtime.

    Four room actions validate on it every turn (as in elizaOS): one read between them.
    """
    return await _once(
        runtime, ("agent_state", room_id), lambda: runtime.get_participant_user_state(room_id, runtime.agent_id)
    )


async def set_agent_state(runtime: AgentRuntime, room_id: UUID, state: ParticipantUserState | None) -> None:
    """Set the agent's own state in the room and forget the cached one."""
    await runtime.set_participant_user_state(room_id, runtime.agent_id, state)
    _memo.get(runtime, {}).pop(("agent_state", room_id), None)


def forget_world(runtime: AgentRuntime, world_id: UUID) -> None:
    """Drop a cached world after writing it, so later readers of this runtime see the change."""
    _memo.get(runtime, {}).pop(("world", world_id), None)


def user_role(world: World | None, entity_id: UUID) -> Role:
    """elizaOS ``getUserServerRole``: the entity's role in the world, NONE when it has none."""
    roles = (world.metadata.get("roles") if world else None) or {}
    try:
        return Role(roles.get(str(entity_id), Role.NONE))
    except ValueError:
        return Role.NONE


def owner_id(world: World) -> str | None:
    """The world owner's entity id as stored (``metadata.ownership.ownerId``), or ``None``."""
    ownership = world.metadata.get("ownership") or {}
    owner = ownership.get("ownerId") if isinstance(ownership, dict) else None
    return str(owner) if owner else None


async def find_worlds_for_owner(runtime: AgentRuntime, entity_id: UUID) -> list[World]:
    """elizaOS ``findWorldsForOwner``: the agent's worlds whose owner is ``entity_id``."""
    return [w for w in await runtime.get_all_worlds() if owner_id(w) == str(entity_id)]


def parse_yes_no(text: str) -> bool | None:
    """A model's YES/NO answer as elizaOS's room actions read it: ``None`` when unclear.

    As in ``followRoom.ts``: "true"/"yes" anywhere is YES (checked first), "false"/"no" is NO.
    """
    cleaned = text.strip().lower()
    if cleaned in {"true", "yes", "y"} or "true" in cleaned or "yes" in cleaned:
        return True
    if cleaned in {"false", "no", "n"} or "false" in cleaned or "no" in cleaned:
        return False
    return None
