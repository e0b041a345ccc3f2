"""Built-in actions: REPLY, IGNORE, NONE (elizaOS ``plugin-bootstrap/src/actions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.plugin import Action, ActionResult
from core.types import Content, Memory, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime


async def _reply(
    runtime: AgentRuntime,
    message: Memory,
    state: State,
    options: dict[str, Any],
    callback: Any,
    responses: list[Memory],
) -> ActionResult:
    # The response already carries the text the model wrote with its plan: send it as is
    # rather than paying for a second model call (elizaOS makes one).
    text = next((r.content.text for r in responses if r.content.text), "")
    thought = next((r.content.thought for r in responses if r.content.thought), None)
    await callback(Content(text=text, thought=thought, actions=["REPLY"], source=message.content.source))
    return ActionResult(success=True, text=text)


async def _ignore(*_: Any) -> ActionResult:
    return ActionResult(success=True, values={"ignored": True})


async def _none(*_: Any) -> ActionResult:
    return ActionResult(success=True)


REPLY = Action(
    name="REPLY",
    description="Reply to the message with the text. Use when a reply is called for.",
    handler=_reply,
    similes=("RESPOND", "ANSWER", "GREET", "REPLY_TO_MESSAGE"),
)
IGNORE = Action(
    name="IGNORE",
    description="Do not answer: the message is not for the agent, or answering would be wrong.",
    handler=_ignore,
    similes=("STOP_TALKING", "NO_RESPONSE"),
)
NONE = Action(
    name="NONE",
    description="Answer with the text only and take no other action.",
    handler=_none,
    similes=("NO_ACTION",),
)
