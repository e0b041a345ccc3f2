"""The built-in plugin (elizaOS ``plugin-bootstrap``).

Actions: REPLY, IGNORE, NONE; FOLLOW_ROOM, UNFOLLOW_ROOM, MUTE_ROOM, UNMUTE_ROOM; SEND_MESSAGE,
UPDATE_CONTACT (UPDATE_ENTITY), UPDATE_ROLE, UPDATE_SETTINGS, CHOOSE_OPTION.
Providers: CHARACTER, RECENT_MESSAGES, ACTIONS, TIME, ANXIETY, CAPABILITIES, PROVIDERS, ROLES,
SETTINGS, ACTION_STATE (every turn, as in elizaOS); ATTACHMENTS, WORLD, CHOICE (dynamic);
EVALUATORS (private).
Events: MESSAGE_RECEIVED from a connector is answered through its callback (``core.messaging.connector``).
"""

from __future__ import annotations

from core.bootstrap.actions import IGNORE, NONE, REPLY
from core.bootstrap.context_providers import (
    ACTION_STATE,
    ANXIETY,
    ATTACHMENTS,
    CAPABILITIES,
    EVALUATORS,
    PROVIDERS,
    TIME,
)
from core.bootstrap.entity_actions import SEND_MESSAGE, UPDATE_CONTACT
from core.bootstrap.providers import ACTIONS, CHARACTER, RECENT_MESSAGES
from core.bootstrap.room_actions import FOLLOW_ROOM, MUTE_ROOM, UNFOLLOW_ROOM, UNMUTE_ROOM
from core.bootstrap.world_actions import CHOOSE_OPTION, UPDATE_ROLE, UPDATE_SETTINGS
from core.bootstrap.world_providers import CHOICE, ROLES, SETTINGS, WORLD
from core.messaging.connector import MESSAGE_EVENTS
from core.plugin import Plugin

plugin = Plugin(
    name="bootstrap",
    description="Core actions and providers every agent has.",
    actions=(
        REPLY,
        IGNORE,
        NONE,
        FOLLOW_ROOM,
        UNFOLLOW_ROOM,
        MUTE_ROOM,
        UNMUTE_ROOM,
        SEND_MESSAGE,
        UPDATE_CONTACT,
        UPDATE_ROLE,
        UPDATE_SETTINGS,
        CHOOSE_OPTION,
    ),
    providers=(
        CHARACTER,
        RECENT_MESSAGES,
        ACTIONS,
        TIME,
        ANXIETY,
        CAPABILITIES,
        PROVIDERS,
        ROLES,
        SETTINGS,
        ACTION_STATE,
        ATTACHMENTS,
        WORLD,
        CHOICE,
        EVALUATORS,
    ),
    events=MESSAGE_EVENTS,
)

__all__ = ["plugin"]
