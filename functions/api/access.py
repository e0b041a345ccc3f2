"""What a caller may touch (``functions.api.identity`` says who it is).

* Admin-only routes carry ``middlewares=ADMIN_ONLY``: anyone else gets 403.
* A room is readable and writable by its participants, by a connector in rooms of its own
  source, and by admins. To anyone else it does not exist (404, as for an unknown room), so
  room ids cannot be probed.
* Who speaks: a user always as itself; a connector for one of its platform's users
  (``entityId``) or itself; an admin for anyone. A field the caller may not set is a 403
  naming it, and nothing is written.
* Without ``roomId``, a caller's room is its direct-message room with the agent, whose id only
  the server can derive (``Orchestrator.dm_room_id``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from core.db.adapter import RoomAccess
from core.errors import NotFoundError
from core.runtime import AgentRuntime
from core.uuid import create_unique_uuid
from functions.api.context import caller, current
from functions.api.identity import Caller, Role


class Forbidden(Exception):
    """The caller is known but may not do this (HTTP 403).

    Args:
        message: A sentence for people.
        field: The request field the caller may not set, if one is to blame.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def admin_only(app: BaseRouter, next_middleware: Callable[..., Response[Any]]) -> Response[Any]:
    """Powertools route middleware: 403 unless the caller is an admin."""
    if not caller().is_admin:
        raise Forbidden("this route is for admins")
    return next_middleware(app)


#: ``middlewares=`` of every admin-only route.
ADMIN_ONLY = [admin_only]


def speaker(who: Caller, entity_id: UUID | None, source: str | None) -> tuple[UUID, str]:
    """Whose message it is, outside any agent, and its source.

    Args:
        who: The caller.
        entity_id: The body's ``entityId`` (a platform user id for a connector).
        source: The body's ``source``, when given.

    Returns:
        ``(entity key, source)``.

    Raises:
        Forbidden: a user sets ``entityId`` or another ``source``, or a connector another source.
    """
    if who.role is Role.ADMIN:
        return entity_id or who.entity_key, source or who.source
    if source not in (None, who.source):
        raise Forbidden(f"this caller speaks for source {who.source!r} only", field="source")
    if who.role is Role.CONNECTOR:
        return (who.platform_entity(entity_id) if entity_id else who.entity_key), who.source
    if entity_id is not None:
        raise Forbidden("only a connector or an admin may speak for another entity", field="entityId")
    return who.entity_key, who.source


async def check_room(runtime: AgentRuntime, who: Caller, entity_key: UUID, room_id: UUID, *, may_create: bool) -> None:
    """Refuse a room the caller may not use (one round trip).

    Args:
        runtime: The agent's runtime.
        who: The caller.
        entity_key: Who speaks (``speaker``), outside the agent.
        room_id: The room asked for.
        may_create: A room that does not exist yet is allowed (posting creates it, with the
            speaker as participant and the caller's source).

    Raises:
        NotFoundError: the room does not exist (and may not be created) or the caller may not use it.
    """
    entity_id = create_unique_uuid(runtime.agent_id, entity_key)
    access = await runtime.adapter.get_room_access(runtime.agent_id, room_id, entity_id)
    allowed = may_create if access is None else _may_use(who, access)
    if not allowed:
        raise NotFoundError(f"room {room_id} not found for agent {runtime.character.name}")


def _may_use(who: Caller, access: RoomAccess) -> bool:
    if who.role is Role.ADMIN or access.is_participant:
        return True
    return who.role is Role.CONNECTOR and access.room.source == who.source


async def readable_room(runtime: AgentRuntime, who: Caller, room_id: UUID | None) -> UUID | None:
    """The room a read may look at: the one asked for once checked, else the caller's DM room.

    An admin without ``roomId`` reads across rooms (``None``).

    Raises:
        NotFoundError: the caller may not read the room.
    """
    if room_id is not None:
        await check_room(runtime, who, who.entity_key, room_id, may_create=False)
        return room_id
    if who.role is Role.ADMIN:
        return None
    return dm_room_id(runtime, who.entity_key)


def dm_room_id(runtime: AgentRuntime, entity_key: UUID) -> UUID:
    """The DM room of ``entity_key`` with the runtime's agent (``Orchestrator.dm_room_id``)."""
    return current().orchestrator.dm_room_id(runtime.agent_id, entity_key)
