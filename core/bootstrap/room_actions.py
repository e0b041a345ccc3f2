"""FOLLOW_ROOM, UNFOLLOW_ROOM, MUTE_ROOM, UNMUTE_ROOM (elizaOS ``plugin-bootstrap/src/actions/followRoom.ts``,
``unfollowRoom.ts``, ``muteRoom.ts``, ``unmuteRoom.ts``).

Each asks TEXT_SMALL a YES/NO question (elizaOS's template, filled from the turn's state), and on
YES sets the agent's own participant state in the room (FOLLOWED, MUTED or none) and stores a
thought memory, as elizaOS does. Names, similes, descriptions, templates and validate rules are
elizaOS 1.7's. The should-respond step reads the state (a muted room is ignored unless the agent
is named; a followed one is answered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.bootstrap.shared import BOOLEAN_FOOTER, cached_agent_state, cached_room, parse_yes_no, set_agent_state
from core.db.adapter import ParticipantUserState
from core.messaging.templates import compose_prompt
from core.plugin import Action, ActionResult
from core.types import Content, Memory, MemoryMetadata, ModelType, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

SHOULD_FOLLOW_TEMPLATE = f"""# Task: Decide if {{{{agentName}}}} should start following this room, i.e. eagerly participating without explicit mentions.

{{{{recentMessages}}}}

Should {{{{agentName}}}} start following this room, eagerly participating without explicit mentions?
Respond with YES if:
- The user has directly asked {{{{agentName}}}} to follow the conversation or participate more actively
- The conversation topic is highly engaging and {{{{agentName}}}}'s input would add significant value
- {{{{agentName}}}} has unique insights to contribute and the users seem receptive

Otherwise, respond with NO.
{BOOLEAN_FOOTER}"""  # noqa: E501 (elizaOS's text)

SHOULD_UNFOLLOW_TEMPLATE = f"""# Task: Decide if {{{{agentName}}}} should stop closely following this previously followed room and only respond when mentioned.

{{{{recentMessages}}}}

Should {{{{agentName}}}} stop closely following this previously followed room and only respond when mentioned?
Respond with YES if:
- The user has suggested that {{{{agentName}}}} is over-participating or being disruptive
- {{{{agentName}}}}'s eagerness to contribute is not well-received by the users
- The conversation has shifted to a topic where {{{{agentName}}}} has less to add

Otherwise, respond with NO.
{BOOLEAN_FOOTER}"""  # noqa: E501

SHOULD_MUTE_TEMPLATE = f"""# Task: Decide if {{{{agentName}}}} should mute this room and stop responding unless explicitly mentioned.

{{{{recentMessages}}}}

Should {{{{agentName}}}} mute this room and stop responding unless explicitly mentioned?

Respond with YES if:
- The user is being aggressive, rude, or inappropriate
- The user has directly asked {{{{agentName}}}} to stop responding or be quiet
- {{{{agentName}}}}'s responses are not well-received or are annoying the user(s)

Otherwise, respond with NO.
{BOOLEAN_FOOTER}"""  # noqa: E501

SHOULD_UNMUTE_TEMPLATE = f"""# Task: Decide if {{{{agentName}}}} should unmute this previously muted room and start considering it for responses again.

{{{{recentMessages}}}}

Should {{{{agentName}}}} unmute this previously muted room and start considering it for responses again?
Respond with YES if:
- The user has explicitly asked {{{{agentName}}}} to start responding again
- The user seems to want to re-engage with {{{{agentName}}}} in a respectful manner
- The tone of the conversation has improved and {{{{agentName}}}}'s input would be welcome

Otherwise, respond with NO.
{BOOLEAN_FOOTER}"""  # noqa: E501

FOLLOW_KEYWORDS = ("follow", "participate", "engage", "listen", "take interest", "join")


@dataclass(frozen=True)
class _RoomChange:
    """One of the four actions: what it asks, what it sets, how it reports."""

    name: str
    template: str
    new_state: ParticipantUserState | None
    verb: str  # "follow" → "Now following room", "Decided not to follow room"
    done: str  # text on success, e.g. "Now following room"
    flag: str  # values key, e.g. "roomFollowed"

    async def run(self, runtime: AgentRuntime, message: Memory, state: State | None) -> ActionResult:
        if state is None:
            return _failure(self.name, "STATE_REQUIRED", f"State is required for {self.verb} room action")
        prompt = compose_prompt(self.template, state.values)
        answer = str(await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": prompt, "stop_sequences": []}))
        decision = parse_yes_no(answer)
        if decision is not None:
            await _thought(runtime, message, self.name, decision)
        room = await cached_room(runtime, message.room_id)
        room_name = room.name if room else None
        if not decision:
            return self._declined(message, room_name)
        await set_agent_state(runtime, message.room_id, self.new_state)
        await _store(
            runtime, message, Content(thought=f"I {self.verb}ed the room {room_name}", actions=[f"{self.name}_START"])
        )
        return ActionResult(
            text=f"{self.done}: {room_name}",
            values={
                "success": True,
                self.flag: True,
                "roomId": str(message.room_id),
                "roomName": room_name,
                "newState": self.new_state.value if self.new_state else None,
            },
            data={"actionName": self.name, "roomId": str(message.room_id), "roomName": room_name},
        )

    def _declined(self, message: Memory, room_name: str | None) -> ActionResult:
        return ActionResult(
            text=f"Decided not to {self.verb} room: {room_name}",
            values={"success": True, self.flag: False, "roomId": str(message.room_id), "reason": "NOT_APPROPRIATE"},
            data={"actionName": self.name, "roomId": str(message.room_id), "reason": "Decision criteria not met"},
        )


def _failure(name: str, code: str, text: str) -> ActionResult:
    return ActionResult(
        success=False, text=text, error=text, values={"success": False, "error": code}, data={"actionName": name}
    )


async def _thought(runtime: AgentRuntime, message: Memory, name: str, decided: bool) -> None:
    # elizaOS records the decision itself as a thought memory: "_STARTED" or "_FAILED".
    verb = name.split("_")[0].lower()
    thought = f"I will now {verb} this room" if decided else f"I decided to not {verb} this room"
    content = Content(
        source=message.content.source, thought=thought, actions=[f"{name}_{'STARTED' if decided else 'FAILED'}"]
    )
    await _store(runtime, message, content, MemoryMetadata.model_validate({"type": "custom", "source": name}))


async def _store(
    runtime: AgentRuntime, message: Memory, content: Content, metadata: MemoryMetadata | None = None
) -> None:
    memory = Memory(
        entity_id=message.entity_id,
        agent_id=runtime.agent_id,
        room_id=message.room_id,
        content=content,
        metadata=metadata or MemoryMetadata(),
    )
    await runtime.create_memory(memory, "messages")


def _handler(change: _RoomChange) -> Any:
    async def handler(runtime: AgentRuntime, message: Memory, state: State | None, *_: Any) -> ActionResult:
        return await change.run(runtime, message, state)

    return handler


async def _agent_state(runtime: AgentRuntime, message: Memory) -> ParticipantUserState | None:
    return await cached_agent_state(runtime, message.room_id)


async def _can_follow(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    if not any(k in message.text.lower() for k in FOLLOW_KEYWORDS):  # no read for most messages
        return False
    return await _agent_state(runtime, message) not in {ParticipantUserState.FOLLOWED, ParticipantUserState.MUTED}


async def _is_followed(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    return await _agent_state(runtime, message) == ParticipantUserState.FOLLOWED


async def _not_muted(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    return await _agent_state(runtime, message) != ParticipantUserState.MUTED


async def _is_muted(runtime: AgentRuntime, message: Memory, state: State | None = None) -> bool:
    return await _agent_state(runtime, message) == ParticipantUserState.MUTED


_FOLLOW = _RoomChange(
    "FOLLOW_ROOM", SHOULD_FOLLOW_TEMPLATE, ParticipantUserState.FOLLOWED, "follow", "Now following room", "roomFollowed"
)
_UNFOLLOW = _RoomChange(
    "UNFOLLOW_ROOM", SHOULD_UNFOLLOW_TEMPLATE, None, "unfollow", "Stopped following room", "roomUnfollowed"
)
_MUTE = _RoomChange("MUTE_ROOM", SHOULD_MUTE_TEMPLATE, ParticipantUserState.MUTED, "mute", "Room muted", "roomMuted")
_UNMUTE = _RoomChange("UNMUTE_ROOM", SHOULD_UNMUTE_TEMPLATE, None, "unmute", "Room unmuted", "roomUnmuted")

FOLLOW_ROOM = Action(
    name="FOLLOW_ROOM",
    similes=("FOLLOW_CHAT", "FOLLOW_CHANNEL", "FOLLOW_CONVERSATION", "FOLLOW_THREAD"),
    description="Start following this channel with great interest, chiming in without needing to be explicitly "
    "mentioned. Only do this if explicitly asked to.",
    handler=_handler(_FOLLOW),
    validate=_can_follow,
)
UNFOLLOW_ROOM = Action(
    name="UNFOLLOW_ROOM",
    similes=("UNFOLLOW_CHAT", "UNFOLLOW_CONVERSATION", "UNFOLLOW_ROOM", "UNFOLLOW_THREAD"),
    description="Stop following this channel. You can still respond if explicitly mentioned, but you won't "
    "automatically chime in anymore. Unfollow if you're annoying people or have been asked to.",
    handler=_handler(_UNFOLLOW),
    validate=_is_followed,
)
MUTE_ROOM = Action(
    name="MUTE_ROOM",
    similes=("MUTE_CHAT", "MUTE_CONVERSATION", "MUTE_ROOM", "MUTE_THREAD", "MUTE_CHANNEL"),
    description="Mutes a room, ignoring all messages unless explicitly mentioned. Only do this if explicitly "
    "asked to, or if you're annoying people.",
    handler=_handler(_MUTE),
    validate=_not_muted,
)
UNMUTE_ROOM = Action(
    name="UNMUTE_ROOM",
    similes=("UNMUTE_CHAT", "UNMUTE_CONVERSATION", "UNMUTE_ROOM", "UNMUTE_THREAD"),
    description="Unmutes a room, allowing the agent to consider responding to messages again.",
    handler=_handler(_UNMUTE),
    validate=_is_muted,
)
