"""UPDATE_ROLE, UPDATE_SETTINGS, CHOOSE_OPTION (elizaOS ``plugin-bootstrap/src/actions/roles.ts``,
``settings.ts``, ``choice.ts``): actions on a world's roles, settings and pending choices.

Names, similes, descriptions, extraction templates and validate rules are elizaOS 1.7's. What
differs, and why, is said where it happens (docs/plugins.md lists it too).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel

from core.bootstrap.shared import Role, cached_room, cached_world, find_worlds_for_owner, forget_world, user_role
from core.messaging.prompt_data import clean_name, quote_block
from core.messaging.response_parser import parse_response, parse_tag
from core.messaging.templates import compose_prompt
from core.plugin import Action, ActionResult, HandlerCallback
from core.types import ChannelType, Content, Memory, ModelType, State, Task, World

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

XML_ONLY = """Do NOT include any thinking, reasoning, or <think> sections in your response. 
Go directly to the XML response format without any preamble or explanation."""  # noqa: W291 (elizaOS's text)
XML_IMPORTANT = (
    "IMPORTANT: Your response must ONLY contain the <response></response> XML block above. Do not include any "
    "text, thinking, or reasoning before or after this XML block. Start your response immediately with "
    "<response> and end with </response>."
)


def _result(name: str, ok: bool, text: str, **values: Any) -> ActionResult:
    return ActionResult(
        success=ok,
        text=text,
        error=None if ok else text,
        values={"success": ok, **values},
        data={"actionName": name, **values},
    )


async def _say(callback: HandlerCallback | None, text: str, action: str, message: Memory) -> None:
    if callback is not None:
        await callback(Content(text=text, actions=[action], source=message.content.source))


# -- UPDATE_ROLE --------------------------------------------------------------------------

ROLE_EXTRACTION_TEMPLATE = f"""# Task: Parse Role Assignment

I need to extract user role assignments from the input text. Users can be referenced by name, username, or mention.

The available role types are:
- OWNER: Full control over the server and all settings
- ADMIN: Ability to manage channels and moderate content
- NONE: Regular user with no special permissions

# Current context:
{{{{content}}}}

{XML_ONLY}

Format your response as XML with multiple assignments:
<response>
  <assignments>
    <assignment>
      <entityId>John</entityId>
      <newRole>ADMIN</newRole>
    </assignment>
    <assignment>
      <entityId>Sarah</entityId>
      <newRole>OWNER</newRole>
    </assignment>
  </assignments>
</response>

{XML_IMPORTANT}"""


def can_modify_role(current: Role, target: Role | None, new: Role) -> bool:
    """elizaOS ``canModifyRole``: owners may do anything, admins anything but make owners, others nothing;
    nobody changes the role of someone with their own role."""
    if target == current:
        return False
    if current == Role.OWNER:
        return True
    return current == Role.ADMIN and new != Role.OWNER


async def _role_validate(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    if message.content.channel_type not in {ChannelType.GROUP, ChannelType.WORLD}:
        return False
    room = await cached_room(runtime, message.room_id)
    return room is not None and bool(room.server_id)


def _assignments(answer: str) -> list[tuple[str, str]]:
    blocks = re.findall(r"<assignment>(.*?)</assignment>", answer, re.DOTALL | re.IGNORECASE)
    pairs = [(parse_tag(b, "entityId") or "", (parse_tag(b, "newRole") or "").upper()) for b in blocks]
    return [(who, role) for who, role in pairs if who and role in Role.__members__]


async def _update_role(
    runtime: AgentRuntime, message: Memory, state: State | None, options: Any, callback: HandlerCallback | None, *_: Any
) -> ActionResult:
    if state is None:
        return _result("UPDATE_ROLE", False, "State is required for role assignment", error="STATE_REQUIRED")
    # elizaOS reads the world from the WORLD_ID setting; the room's world is the one the message is in.
    room = await cached_room(runtime, message.room_id)
    world = await cached_world(runtime, room.world_id) if room and room.world_id else None
    if world is None:
        await _say(callback, "I couldn't find the world. This action only works in a world.", "UPDATE_ROLE", message)
        return _result("UPDATE_ROLE", False, "World not found", error="WORLD_NOT_FOUND")
    prompt = compose_prompt(ROLE_EXTRACTION_TEMPLATE, {**state.values, "content": state.text})
    found = _assignments(str(await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": prompt})))
    if not found:
        await _say(callback, "No valid role assignments found in the request.", "UPDATE_ROLE", message)
        return _result("UPDATE_ROLE", False, "No valid role assignments found", error="NO_ASSIGNMENTS")
    done, failed = await _apply_roles(runtime, message, world, found, callback)
    return _result(
        "UPDATE_ROLE",
        True,
        f"Role updates completed: {len(done)} successful, {len(failed)} failed",
        successfulUpdates=len(done),
        failedUpdates=len(failed),
        updates=done,
        failures=failed,
    )


async def _apply_roles(
    runtime: AgentRuntime,
    message: Memory,
    world: World,
    found: list[tuple[str, str]],
    callback: HandlerCallback | None,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    roles = dict(world.metadata.get("roles") or {})
    requester = user_role(world, message.entity_id)
    entities = await runtime.get_entities_for_room(message.room_id)
    done, failed = [], []
    for who, new_role in found:
        # The model names people; elizaOS matches its answer against entity ids only.
        target = next((e for e in entities if who == str(e.id) or who.lower() in (n.lower() for n in e.names)), None)
        if target is None:
            failed.append({"entityId": who, "reason": "Entity not found"})
            continue
        name = target.names[0] if target.names else "Unknown"
        current = Role(roles[str(target.id)]) if str(target.id) in roles else None
        if not can_modify_role(requester, current, Role(new_role)):
            await _say(
                callback, f"You don't have permission to change {name}'s role to {new_role}.", "UPDATE_ROLE", message
            )
            failed.append({"entityId": str(target.id), "reason": "Insufficient permissions"})
            continue
        roles[str(target.id)] = new_role
        done.append({"entityId": str(target.id), "entityName": name, "newRole": new_role})
        await _say(callback, f"Updated {name}'s role to {new_role}.", "UPDATE_ROLE", message)
    if done:
        await runtime.update_world(world.model_copy(update={"metadata": {**world.metadata, "roles": roles}}))
        forget_world(runtime, world.id)
    return done, failed


UPDATE_ROLE = Action(
    name="UPDATE_ROLE",
    similes=("CHANGE_ROLE", "SET_PERMISSIONS", "ASSIGN_ROLE", "MAKE_ADMIN"),
    description="Assigns a role (Admin, Owner, None) to a user or list of users in a channel.",
    handler=_update_role,
    validate=_role_validate,
)


# -- UPDATE_SETTINGS ----------------------------------------------------------------------

MESSAGE_COMPLETION_FOOTER = f"""
# Instructions: Write the next message for {{{{agentName}}}}. Include the appropriate action from the list: {{{{actionNames}}}}

{XML_ONLY}

Response format should be formatted in XML like this:
<response>
  <name>{{{{agentName}}}}</name>
  <text>Your message text here</text>
  <thought>Your thought about the response</thought>
  <actions>ACTION1,ACTION2</actions>
</response>

Do not including any thinking or internal reflection in the "text" field.
"thought" should be a short description of what the agent is thinking about before responding, including a brief justification for the response.

{XML_IMPORTANT}"""  # noqa: E501

SETTINGS_SUCCESS_TEMPLATE = f"""# Task: Generate a response for successful setting updates
{{{{providers}}}}

# Update Information:
- Updated Settings: {{{{updateMessages}}}}
- Next Required Setting: {{{{nextSetting}}}}
- Remaining Required Settings: {{{{remainingRequired}}}}

# Instructions:
1. Acknowledge the successful update of settings
2. Maintain {{{{agentName}}}}'s personality and tone
3. Provide clear guidance on the next setting that needs to be configured
4. Explain what the next setting is for and how to set it
5. If appropriate, mention how many required settings remain

Write a natural, conversational response that {{{{agentName}}}} would send about the successful update and next steps.
Include the actions array ["SETTING_UPDATED"] in your response.
{MESSAGE_COMPLETION_FOOTER}"""

SETTINGS_FAILURE_TEMPLATE = f"""# Task: Generate a response for failed setting updates

# About {{{{agentName}}}}:
{{{{bio}}}}

# Current Settings Status:
{{{{settingsStatus}}}}

# Next Required Setting:
- Name: {{{{nextSetting}}}}
- Required: Yes
- Remaining Required Settings: {{{{remainingRequired}}}}

# Recent Conversation:
{{{{recentMessages}}}}

# Instructions:
1. Express that you couldn't understand or process the setting update
2. Maintain {{{{agentName}}}}'s personality and tone
3. Provide clear guidance on what setting needs to be configured next
4. Explain what the setting is for and how to set it properly
5. Use a helpful, patient tone

Write a natural, conversational response that {{{{agentName}}}} would send about the failed update and how to proceed.
Include the actions array ["SETTING_UPDATE_FAILED"] in your response.
{MESSAGE_COMPLETION_FOOTER}"""


class SettingUpdate(BaseModel):
    """One ``{key, value}`` the model read from the user's message."""

    key: str
    value: str


class SettingUpdates(BaseModel):
    """What ``extractSettingValues`` asks OBJECT_LARGE for (elizaOS asks for a bare array)."""

    updates: list[SettingUpdate]


async def _settings_world(runtime: AgentRuntime, message: Memory) -> World | None:
    owned = await find_worlds_for_owner(runtime, message.entity_id)
    return next((w for w in owned if w.metadata.get("settings")), None)


async def _settings_validate(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    if message.content.channel_type != ChannelType.DM:  # no read outside DMs
        return False
    return await _settings_world(runtime, message) is not None


def _extraction_prompt(settings: dict[str, Any], state: State) -> str:
    pending = [(k, s) for k, s in settings.items() if not k.startswith("_") and s.get("value") is None]
    context = "\n".join(
        f"{k}: {s.get('description', '')} {'Required.' if s.get('required') else 'Optional.'}" for k, s in pending
    )
    return (
        "I need to extract settings values from the user's message.\n\n"
        f"Available settings:\n{context}\n\nUser message: {state.text}\n\n"
        "For each setting mentioned in the user's message, extract the value.\n\n"
        "Only return settings that are clearly mentioned in the user's message.\n"
        "If a setting is mentioned but no clear value is provided, do not include it."
    )


def _apply_settings(settings: dict[str, Any], updates: list[SettingUpdate]) -> tuple[dict[str, Any], list[str]]:
    changed, messages = dict(settings), []
    for update in updates:
        setting = changed.get(update.key)
        if not isinstance(setting, dict):
            continue
        if any(changed.get(dep, {}).get("value") is None for dep in setting.get("dependsOn") or ()):
            messages.append(f"Cannot update {setting.get('name')} - dependencies not met")
            continue
        changed[update.key] = {**setting, "value": update.value}
        messages.append(f"Updated {setting.get('name')} successfully")
    return changed, messages


async def _update_settings(
    runtime: AgentRuntime, message: Memory, state: State | None, options: Any, callback: HandlerCallback | None, *_: Any
) -> ActionResult:
    world = await _settings_world(runtime, message)
    if world is None or state is None:
        return _result("UPDATE_SETTINGS", False, "No settings to update", error="NO_SETTINGS_STATE")
    settings = dict(world.metadata["settings"])
    found = await runtime.get_object(
        SettingUpdates, _extraction_prompt(settings, state), model_type=ModelType.OBJECT_LARGE
    )
    changed, messages = _apply_settings(settings, found.updates)
    ok = any(m.endswith("successfully") for m in messages)
    if ok:
        await runtime.update_world(world.model_copy(update={"metadata": {**world.metadata, "settings": changed}}))
        forget_world(runtime, world.id)
    await _settings_reply(runtime, message, state, changed, messages, ok, callback)
    return _result(
        "UPDATE_SETTINGS",
        ok,
        "\n".join(messages) or "No settings were updated",
        updatedSettings=[u.key for u in found.updates if u.key in changed],
    )


async def _settings_reply(
    runtime: AgentRuntime,
    message: Memory,
    state: State,
    settings: dict[str, Any],
    messages: list[str],
    ok: bool,
    callback: HandlerCallback | None,
) -> None:
    from core.bootstrap.world_providers import settings_status

    missing = [s for s in settings.values() if isinstance(s, dict) and s.get("required") and s.get("value") is None]
    values = {
        **state.values,
        "updateMessages": "\n".join(messages),
        "nextSetting": missing[0].get("name", "none") if missing else "none",
        "remainingRequired": len(missing),
        "settingsStatus": settings_status(runtime, settings, True, state),
        "bio": "\n".join(runtime.character.bio),
    }
    template = SETTINGS_SUCCESS_TEMPLATE if ok else SETTINGS_FAILURE_TEMPLATE
    answer = await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": compose_prompt(template, values)})
    parsed = parse_response(str(answer))
    action = "SETTING_UPDATED" if ok else "SETTING_UPDATE_FAILED"
    await _say(callback, parsed.text, action, message)


UPDATE_SETTINGS = Action(
    name="UPDATE_SETTINGS",
    similes=("UPDATE_SETTING", "SAVE_SETTING", "SET_CONFIGURATION", "CONFIGURE"),
    description="Saves a configuration setting during the onboarding process, or update an existing setting. Use "
    "this when you are onboarding with a world owner or admin.",
    handler=_update_settings,
    validate=_settings_validate,
)


# -- CHOOSE_OPTION ------------------------------------------------------------------------

OPTION_EXTRACTION_TEMPLATE = f"""# Task: Extract selected task and option from user message

# Available Tasks:
{{{{tasks}}}}

# Recent Messages:
{{{{recentMessages}}}}

# Instructions:
1. Review the user's message and identify which task and option they are selecting
2. Match against the available tasks and their options, including ABORT
3. Return the task ID (shortened UUID) and selected option name exactly as listed above
4. If no clear selection is made, return null for both fields

{XML_ONLY}

Return in XML format:
<response>
  <taskId>string_or_null</taskId>
  <selectedOption>OPTION_NAME_or_null</selectedOption>
</response>

{XML_IMPORTANT}"""


async def _pending(runtime: AgentRuntime, room_id: UUID) -> list[Task]:
    tasks = await runtime.get_tasks(room_id=room_id, tags=["AWAITING_CHOICE"])
    return [t for t in tasks if t.metadata and t.metadata.options]


async def _choice_validate(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    room = await cached_room(runtime, message.room_id)
    if room is None or not room.server_id or room.world_id is None:
        return False
    if user_role(await cached_world(runtime, room.world_id), message.entity_id) not in {Role.OWNER, Role.ADMIN}:
        return False
    return bool(await _pending(runtime, message.room_id))


def _tasks_text(tasks: list[Task]) -> str:
    blocks = []
    for task in tasks:
        options = "\n".join(
            f"- {clean_name(o.name)}: {quote_block(o.description)}" for o in task.metadata.options or []
        )
        blocks.append(
            f"Task ID: {str(task.id)[:8]} - {clean_name(task.name)}\nAvailable options:\n{options}"
            "\n- ABORT: Cancel this task"
        )
    return "\n".join(blocks)


async def _choose_option(
    runtime: AgentRuntime, message: Memory, state: State | None, options: Any, callback: HandlerCallback | None, *_: Any
) -> ActionResult:
    tasks = await _pending(runtime, message.room_id)
    if not tasks:
        return _result("CHOOSE_OPTION", False, "No pending tasks with options found", error="NO_PENDING_TASKS")
    values = {"tasks": _tasks_text(tasks), "recentMessages": quote_block(message.text)}
    answer = str(
        await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": compose_prompt(OPTION_EXTRACTION_TEMPLATE, values)})
    )
    short_id, option = parse_tag(answer, "taskId"), parse_tag(answer, "selectedOption")
    task = next((t for t in tasks if short_id and str(t.id)[:8] == short_id), None)
    if task is None or not option or option == "null":
        await _say(callback, _options_text(tasks), "SELECT_OPTION_INVALID", message)
        return _result("CHOOSE_OPTION", False, "No valid option selected", error="NO_SELECTION")
    if option == "ABORT":
        await runtime.delete_task(task.id)
        await _say(callback, f'Task "{task.name}" has been cancelled.', "CHOOSE_OPTION_CANCELLED", message)
        return _result(
            "CHOOSE_OPTION", True, f'Task "{task.name}" has been cancelled', taskAborted=True, taskId=str(task.id)
        )
    worker = runtime.get_task_worker(task.name)
    if worker is not None:
        await worker.execute(runtime, {"option": option}, task)
    text = f"Selected option: {option} for task: {task.name}"
    await _say(callback, text, "CHOOSE_OPTION", message)
    return _result("CHOOSE_OPTION", True, text, selectedOption=option, taskId=str(task.id), taskName=task.name)


def _options_text(tasks: list[Task]) -> str:
    text = "Please select a valid option from one of these tasks:\n\n"
    for task in tasks:
        names = [o.name for o in task.metadata.options or []] + ["ABORT"]
        text += f"**{task.name}** (ID: {str(task.id)[:8]}):\n" + "\n".join(f"- {n}" for n in names) + "\n\n"
    return text


CHOOSE_OPTION = Action(
    name="CHOOSE_OPTION",
    similes=("SELECT_OPTION", "SELECT", "PICK", "CHOOSE"),
    description="Selects an option for a pending task that has multiple options",
    handler=_choose_option,
    validate=_choice_validate,
)
