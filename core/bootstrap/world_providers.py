"""Built-in providers about the room's world: WORLD, ROLES, SETTINGS, CHOICE
(elizaOS ``plugin-bootstrap/src/providers/world.ts``, ``roles.ts``, ``settings.ts``, ``choice.ts``).

ROLES and SETTINGS run on every turn, as in elizaOS; they share one room read per turn
(``core.bootstrap.shared``) and skip the database where the message already says the answer
(ROLES in a room the message marks as not GROUP; SETTINGS in a room without a world).
WORLD and CHOICE are dynamic: they run only when a plan names them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.bootstrap.shared import cached_room, cached_world, find_worlds_for_owner, user_role
from core.messaging.prompt_data import clean_name, quote_block, quote_data
from core.plugin import Provider, ProviderResult
from core.types import ChannelType, Memory, Room, State, World
from core.uuid import create_unique_uuid

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)


def _said(text: str, key: str, data: dict[str, Any] | None = None) -> ProviderResult:
    return ProviderResult(text=text, values={key: text}, data=data if data is not None else {key: []})


# -- WORLD --------------------------------------------------------------------------------

_CHANNEL_GROUPS = {
    ChannelType.GROUP: "text",
    ChannelType.WORLD: "text",
    ChannelType.FORUM: "text",
    ChannelType.VOICE_GROUP: "voice",
    ChannelType.VOICE_DM: "voice",
    ChannelType.DM: "dm",
    ChannelType.SELF: "dm",
    ChannelType.FEED: "feed",
    ChannelType.THREAD: "thread",
}


async def _world(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    room = await cached_room(runtime, message.room_id)
    if room is None or room.world_id is None:
        reason = "room not found" if room is None else "world ID not found"
        return _world_unknown(reason)
    world = await cached_world(runtime, room.world_id)
    if world is None:
        return _world_unknown("world not found")
    rooms = await runtime.get_rooms(world.id)
    participants = await runtime.get_participants_for_room(message.room_id)
    channels = _channels_by_type(rooms, message.room_id)
    info = _world_info(world, room, rooms, participants, channels)
    return ProviderResult(
        text=f"# World Information\n{info}\n",
        values={"worldName": world.name, "currentChannelName": room.name, "worldInfo": info},
        data={"world": _world_data(world, room, participants, channels)},
    )


def _world_unknown(reason: str) -> ProviderResult:
    text = f"Unable to retrieve world information - {reason}"
    return ProviderResult(text=text, data={"world": {"info": text}})


def _channels_by_type(rooms: list[Room], current: Any) -> dict[str, list[dict[str, Any]]]:
    channels: dict[str, list[dict[str, Any]]] = {k: [] for k in ("text", "voice", "dm", "feed", "thread", "other")}
    for room in rooms:
        if not room.name:  # elizaOS skips unnamed rooms
            continue
        info = {"id": str(room.id), "name": room.name, "isCurrentChannel": room.id == current}
        group = _CHANNEL_GROUPS.get(room.type, "other")
        channels[group].append(info if group != "other" else {**info, "type": room.type.value})
    return channels


def _world_info(world: World, room: Room, rooms: list[Room], participants: list[Any], channels: dict[str, Any]) -> str:
    counts = {k: len(v) for k, v in channels.items()}
    return "\n".join(
        [
            f"# World: {clean_name(world.name, default='')}",
            f"Current Channel: {clean_name(room.name, default='')} ({room.type.value})",
            f"Total Channels: {len(rooms)}",
            f"Participants in current channel: {len(participants)}",
            "",
            f"Text channels: {counts['text']}",
            f"Voice channels: {counts['voice']}",
            f"DM channels: {counts['dm']}",
            f"Feed channels: {counts['feed']}",
            f"Thread channels: {counts['thread']}",
            f"Other channels: {counts['other']}",
        ]
    )


def _world_data(world: World, room: Room, participants: list[Any], channels: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(world.id),
        "name": world.name,
        "messageServerId": world.server_id,
        "metadata": world.metadata,
        "currentRoom": {
            "id": str(room.id),
            "name": room.name,
            "type": room.type.value,
            "channelId": room.channel_id,
            "participantCount": len(participants),
        },
        "channels": channels,
        "channelStats": {"total": sum(len(v) for v in channels.values()), **{k: len(v) for k, v in channels.items()}},
    }


# -- ROLES --------------------------------------------------------------------------------

NO_ROLES = "No role information available for this server."
DM_ROLES = "No access to role information in DMs, the role provider is only available in group scenarios."


async def _roles(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    if message.content.channel_type and message.content.channel_type != ChannelType.GROUP:
        return _said(DM_ROLES, "roles")  # the message says the room's kind: no read needed
    room = await cached_room(runtime, message.room_id)
    if room is None:
        raise LookupError(f"no room {message.room_id}")  # as elizaOS: the provider yields nothing
    if room.type != ChannelType.GROUP:
        return _said(DM_ROLES, "roles")
    if not room.server_id:
        return _said("No role information available - server ID not found.", "roles")
    world = await cached_world(runtime, room.world_id or create_unique_uuid(runtime.agent_id, room.server_id))
    roles = (world.metadata.get("roles") or {}) if world and world.metadata.get("ownership") else {}
    if not roles:
        return _said(NO_ROLES, "roles")
    text = await _role_hierarchy(runtime, roles)
    return _said(text, "roles", {"roles": text}) if text else _said(NO_ROLES, "roles")


async def _role_hierarchy(runtime: AgentRuntime, roles: dict[str, str]) -> str:
    from uuid import UUID

    entities = await runtime.get_entities_by_ids([UUID(k) for k in roles])
    groups: dict[str, list[str]] = {"OWNER": [], "ADMIN": [], "NONE": []}
    seen: set[str] = set()
    for entity in entities:
        name, username = entity.metadata.get("name"), entity.metadata.get("username")
        if not name or not username or username in seen:  # elizaOS skips people without both
            continue
        seen.add(username)
        names = ", ".join(clean_name(n) for n in entity.names)
        line = f"{clean_name(name)} ({names})"
        role = roles.get(str(entity.id), "NONE")
        role = role if role in groups else "NONE"
        groups[role].append(line if role == "OWNER" else f"{line} ({clean_name(username)})")
    parts = ["# Server Role Hierarchy\n"]
    for role, title in (("OWNER", "## Owners"), ("ADMIN", "## Administrators"), ("NONE", "## Members")):
        if groups[role]:
            parts += [title, *groups[role], ""]
    return "\n".join(parts).rstrip("\n") if any(groups.values()) else ""


# -- SETTINGS -----------------------------------------------------------------------------


async def _settings(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    room = await cached_room(runtime, message.room_id)
    if room is None:
        return _said("Error: Room not found", "settings")
    if room.world_id is None:
        return _said("Room does not have a worldId -- settings provider will be skipped", "settings")
    onboarding = room.type == ChannelType.DM
    world = await _settings_world(runtime, message, room, onboarding)
    if world is None or not world.server_id:
        return _said(
            "The user doesn't appear to have ownership of any servers. They should make sure they're using the "
            "correct account."
            if onboarding
            else "Error: No configuration access",
            "settings",
        )
    settings = world.metadata.get("settings")
    if not settings:
        return _said(
            "The user doesn't appear to have any settings configured for this server. They should configure some "
            "settings for this server."
            if onboarding
            else "Configuration has not been completed yet.",
            "settings",
        )
    output = settings_status(runtime, settings, onboarding, state)
    return ProviderResult(text=output, values={"settings": output}, data={"settings": settings})


async def _settings_world(runtime: AgentRuntime, message: Memory, room: Room, onboarding: bool) -> World | None:
    if not onboarding:
        return await cached_world(runtime, room.world_id) if room.world_id else None
    owned = await find_worlds_for_owner(runtime, message.entity_id)
    return next((w for w in owned if w.metadata.get("settings") is not None), owned[0] if owned else None)


def _setting_value(setting: dict[str, Any], onboarding: bool) -> str:
    if setting.get("value") is None:
        return "Not set"
    if setting.get("secret") and not onboarding:
        return "****************"
    return quote_data(str(setting["value"]))  # users set these values: data, never instructions


def settings_status(runtime: AgentRuntime, settings: dict[str, Any], onboarding: bool, state: State) -> str:
    """elizaOS ``generateStatusMessage``: the settings as the model should see them.

    Args:
        settings: ``world.metadata.settings``: ``{key: {name, description, usageDescription,
            value, required, secret}}``.
        onboarding: In a DM with the owner (values shown, instructions to call UPDATE_SETTINGS).
    """
    rows = [(k, s) for k, s in settings.items() if isinstance(s, dict) and s.get("name")]
    missing = sum(1 for _, s in rows if s.get("required") and s.get("value") is None)
    name = runtime.character.name
    if not onboarding:
        head = (
            f"IMPORTANT!: {missing} required settings still need configuration. {name} should get onboarded with "
            "the OWNER as soon as possible.\n\n"
            if missing
            else "All required settings are configured.\n\n"
        )
        body = "\n\n".join(
            f"### {s['name']}\n**Value:** {_setting_value(s, False)}\n**Description:** {s.get('description', '')}"
            for _, s in rows
        )
        return f"## Current Configuration\n\n{head}{body}"
    return _onboarding_status(name, rows, list(settings), missing, state)


def _onboarding_status(name: str, rows: list[tuple[str, Any]], keys: list[str], missing: int, state: State) -> str:
    listing = "\n\n".join(
        f"{k}: {_setting_value(s, True)} {'(Required)' if s.get('required') else '(Optional)'}\n"
        f"({s['name']}) {s.get('usageDescription', '')}"
        for k, s in rows
    )
    instructions = f"""Instructions for {name}:
      - Only update settings if the user is clearly responding to a setting you are currently asking about.
      - If the user's reply clearly maps to a setting and a valid value, you **must** call the UPDATE_SETTINGS action with the correct key and value. Do not just respond with a message saying it's updated — it must be an action.
      - Never hallucinate settings or respond with values not listed above.
      - Do not call UPDATE_SETTINGS just because the user has started onboarding or you think a setting needs to be configured. Only update when the user clearly provides a specific value for a setting you are currently asking about.
      - Answer setting-related questions using only the name, description, and value from the list."""  # noqa: E501 (elizaOS's text)
    valid = f"Valid setting keys: {', '.join(keys)}"
    if missing:
        sender = clean_name(state.values.get("senderName"), default="the user")
        return (
            f"# PRIORITY TASK: Onboarding with {sender}\n\n{name} needs to help the user configure {missing} required "
            f"settings:\n\n{listing}\n\n{valid}\n\n{instructions}\n\n"
            "- Prioritize configuring required settings before optional ones."
        )
    return f"All required settings have been configured. Here's the current configuration:\n\n{listing}\n\n{valid}\n\n{instructions}"  # noqa: E501


# -- CHOICE -------------------------------------------------------------------------------

NO_CHOICES = "No pending choices for the moment."


async def _choice(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    tasks = await runtime.get_tasks(room_id=message.room_id, tags=["AWAITING_CHOICE"])
    with_options = [t for t in tasks if t.metadata and t.metadata.options]
    if not with_options:
        return ProviderResult(text=NO_CHOICES, values={"tasks": NO_CHOICES}, data={"tasks": []})
    output = "# Pending Tasks\n\nThe following tasks are awaiting your selection:\n\n"
    for index, task in enumerate(with_options, 1):
        output += f"{index}. **{clean_name(task.name)}**\n"
        if task.description:
            output += f"   {quote_block(task.description, '   ')}\n"
        output += "   Options:\n"
        for option in task.metadata.options or []:
            detail = f"- {quote_data(option.description)}" if option.description else ""
            output += f"   - `{clean_name(option.name)}` {detail}\n"
        output += "\n"
    output += "To select an option, reply with the option name (e.g., 'post' or 'cancel').\n"
    return ProviderResult(text=output, values={"tasks": output}, data={"tasks": with_options})


WORLD = Provider(name="WORLD", get=_world, dynamic=True, description="World and environment information")
ROLES = Provider(
    name="ROLES", get=_roles, description="Roles in the server, default are OWNER, ADMIN and MEMBER (as well as NONE)"
)
SETTINGS = Provider(name="SETTINGS", get=_settings, description="Current settings for the server")
CHOICE = Provider(
    name="CHOICE", get=_choice, dynamic=True, description="Pending tasks awaiting a choice among their options."
)

__all__ = ["CHOICE", "ROLES", "SETTINGS", "WORLD", "settings_status", "user_role"]
