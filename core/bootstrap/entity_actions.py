"""UPDATE_CONTACT (simile UPDATE_ENTITY) and SEND_MESSAGE (elizaOS ``plugin-bootstrap/src/actions/updateEntity.ts``,
``sendMessage.ts``).

Templates, names, similes and validate rules are elizaOS 1.7's (its UPDATE_ENTITY action is named
UPDATE_CONTACT with UPDATE_ENTITY as a simile; ``find_action("UPDATE_ENTITY")`` finds it). One
difference: elizaOS's ``findEntityByName`` asks the model which entity is meant; here the person
is the room participant whose name the message says, else the sender ("my telegram is...").
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from core.bootstrap.shared import cached_room
from core.bootstrap.world_actions import XML_IMPORTANT, XML_ONLY, _result, _say
from core.messaging.response_parser import parse_tag
from core.messaging.templates import compose_prompt
from core.plugin import Action, ActionResult, HandlerCallback, TargetInfo
from core.types import Component, Content, Entity, Memory, ModelType, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

COMPONENT_TEMPLATE = f"""# Task: Extract Source and Update Component Data

{{{{recentMessages}}}}

# Existing Component Data:
{{{{existingData}}}}

# Instructions:
1. Analyze the conversation to identify:
   - The source/platform being referenced (e.g. telegram, twitter, discord)
   - Any specific component data being shared

2. Generate updated component data that:
   - Is specific to the identified platform/source
   - Preserves existing data when appropriate
   - Includes the new information from the conversation
   - Contains only valid data for this component type

{XML_ONLY}

Return an XML response with the following structure:
<response>
  <source>platform-name</source>
  <data>
    <username>username_value</username>
    <displayName>display_name_value</displayName>
    <!-- Add other component-specific fields as needed -->
  </data>
</response>

Example outputs:
1. For "my telegram username is @dev_guru":
<response>
  <source>telegram</source>
  <data>
    <username>dev_guru</username>
  </data>
</response>

2. For "update my twitter handle to @tech_master":
<response>
  <source>twitter</source>
  <data>
    <username>tech_master</username>
  </data>
</response>

{XML_IMPORTANT}"""

TARGET_EXTRACTION_TEMPLATE = f"""# Task: Extract Target and Source Information

# Recent Messages:
{{{{recentMessages}}}}

# Instructions:
Analyze the conversation to identify:
1. The target type (user or room)
2. The target platform/source (e.g. telegram, discord, etc)
3. Any identifying information about the target

{XML_ONLY}

Return an XML response with:
<response>
  <targetType>user|room</targetType>
  <source>platform-name</source>
  <identifiers>
    <username>username_if_applicable</username>
    <roomName>room_name_if_applicable</roomName>
  </identifiers>
</response>

Example outputs:
1. For "send a message to @dev_guru on telegram":
<response>
  <targetType>user</targetType>
  <source>telegram</source>
  <identifiers>
    <username>dev_guru</username>
  </identifiers>
</response>

2. For "post this in #announcements":
<response>
  <targetType>room</targetType>
  <source>discord</source>
  <identifiers>
    <roomName>announcements</roomName>
  </identifiers>
</response>

{XML_IMPORTANT}"""

_FIELD = re.compile(r"<([A-Za-z_][\w-]*)>(.*?)</\1>", re.DOTALL)


async def find_entity_by_name(runtime: AgentRuntime, message: Memory, name: str | None = None) -> Entity | None:
    """The room participant named ``name`` (or named in the message), else the sender.

    Stands in for elizaOS ``findEntityByName``, which asks the model.
    """
    entities = await runtime.get_entities_for_room(message.room_id)
    wanted = (name or "").lstrip("@").lower()
    text = message.text.lower()
    for entity in sorted(entities, key=lambda e: -max((len(n) for n in e.names), default=0)):
        names = [n.lower() for n in entity.names if n]
        said = any(re.search(rf"\b{re.escape(n)}\b", text) for n in names)
        if entity.id != runtime.agent_id and (wanted in names if wanted else said):
            return entity
    if wanted:
        return None
    return next((e for e in entities if e.id == message.entity_id), None)


# -- UPDATE_CONTACT -----------------------------------------------------------------------


async def _update_contact(
    runtime: AgentRuntime, message: Memory, state: State | None, options: Any, callback: HandlerCallback | None, *_: Any
) -> ActionResult:
    if state is None or callback is None:
        return _result("UPDATE_CONTACT", False, "State and callback are required", error="STATE_REQUIRED")
    room = await cached_room(runtime, message.room_id)
    entity = await find_entity_by_name(runtime, message)
    if entity is None:
        text = "I'm not sure which entity you're trying to update. Could you please specify who you're talking about?"
        await _say(callback, text, "UPDATE_ENTITY_ERROR", message)
        return _result("UPDATE_CONTACT", False, "Entity not found", error="ENTITY_NOT_FOUND")
    prompt = compose_prompt(COMPONENT_TEMPLATE, {**state.values, "existingData": ""})
    answer = str(await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": prompt, "stop_sequences": []}))
    source, data = (parse_tag(answer, "source") or "").lower(), _fields(parse_tag(answer, "data") or "")
    if not source or not data:
        text = (
            "I couldn't properly understand the component information. Please try again with more specific information."
        )
        await _say(callback, text, "UPDATE_ENTITY_ERROR", message)
        return _result("UPDATE_CONTACT", False, "Failed to parse component data", error="PARSE_ERROR")
    world_id = room.world_id if room else None
    existing = await runtime.get_component(entity.id, source, world_id, message.entity_id)
    component = Component(
        id=existing.id if existing else uuid.uuid4(),
        entity_id=entity.id,
        agent_id=runtime.agent_id,
        room_id=message.room_id,
        world_id=world_id,
        source_entity_id=message.entity_id,
        type=source,
        data=data,
    )
    await (runtime.update_component(component) if existing else runtime.create_component(component))
    name = entity.names[0] if entity.names else "them"
    verb = "updated the" if existing else "added new"
    await _say(callback, f"I've {verb} {source} information for {name}.", "UPDATE_ENTITY", message)
    return _result(
        "UPDATE_CONTACT",
        True,
        f"{'Updated' if existing else 'Added new'} {source} information",
        entityId=str(entity.id),
        componentType=source,
        isNewComponent=existing is None,
    )


def _fields(xml: str) -> dict[str, str]:
    return {k: v.strip() for k, v in _FIELD.findall(xml) if v.strip()}


async def _always(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    return True


UPDATE_CONTACT = Action(
    name="UPDATE_CONTACT",
    similes=("UPDATE_ENTITY",),
    description="Add or edit contact details for a person you are talking to or observing in the conversation. Use "
    "this when you learn this information from the conversation about a contact. This is for the agent to relate "
    "entities across platforms, not for world settings or configuration.",
    handler=_update_contact,
    validate=_always,
)


# -- SEND_MESSAGE -------------------------------------------------------------------------


async def _send_validate(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    # As elizaOS: the room's components say which platforms can be reached from here.
    return bool(await runtime.get_components(message.room_id))


async def _send_message(
    runtime: AgentRuntime, message: Memory, state: State | None, options: Any, callback: HandlerCallback | None, *_: Any
) -> ActionResult:
    if state is None or callback is None:
        return _result("SEND_MESSAGE", False, "State and callback are required", error="STATE_REQUIRED")
    prompt = compose_prompt(TARGET_EXTRACTION_TEMPLATE, state.values)
    answer = str(await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": prompt, "stop_sequences": []}))
    kind, source = parse_tag(answer, "targetType"), (parse_tag(answer, "source") or "").lower()
    if kind not in {"user", "room"} or not source:
        text = (
            "I couldn't determine where you want me to send the message. Could you please specify the target "
            "(user or room) and platform?"
        )
        await _say(callback, text, "SEND_MESSAGE_ERROR", message)
        return _result("SEND_MESSAGE", False, "Could not determine message target", error="TARGET_UNCLEAR")
    target = await _target(runtime, message, kind, source, answer)
    if target is None:
        await _say(
            callback, f"I couldn't find the {kind} you want me to send a message to.", "SEND_MESSAGE_ERROR", message
        )
        return _result("SEND_MESSAGE", False, f"Target {kind} not found", error=f"{kind.upper()}_NOT_FOUND")
    await runtime.send_message_to_target(target, Content(text=message.text, source=source))
    await _say(callback, f"Message sent on {source}.", "SEND_MESSAGE", message)
    return _result("SEND_MESSAGE", True, "Message sent", targetType=kind, source=source, messageSent=True)


async def _target(runtime: AgentRuntime, message: Memory, kind: str, source: str, answer: str) -> TargetInfo | None:
    # elizaOS calls the source's service (sendDirectMessage / sendRoomMessage); here a connector
    # registers a send handler for its source (``register_send_handler``) and this goes through it.
    if kind == "user":
        entity = await find_entity_by_name(runtime, message, parse_tag(answer, "username"))
        return TargetInfo(source=source, entity_id=entity.id) if entity else None
    room = await cached_room(runtime, message.room_id)
    wanted = (parse_tag(answer, "roomName") or "").lstrip("#").lower()
    rooms = await runtime.get_rooms(room.world_id) if room and room.world_id else []
    found = next((r for r in rooms if (r.name or "").lower() == wanted), None)
    return TargetInfo(source=source, room_id=found.id, channel_id=found.channel_id) if found else None


SEND_MESSAGE = Action(
    name="SEND_MESSAGE",
    similes=("DM", "MESSAGE", "SEND_DM", "POST_MESSAGE"),
    description="Send a message to a user or room (other than the current one)",
    handler=_send_message,
    validate=_send_validate,
)
