"""Multi-step turns (elizaOS ``DefaultMessageService.runMultiStepCore``), with ``USE_MULTI_STEP``.

Instead of one plan, the model decides one step at a time (``multiStepDecisionTemplate``):
providers to compose and at most one action to run, until it says ``isFinish`` or
``MAX_MULTISTEP_ITERATIONS`` steps have run; each step's outcome is shown to the next one
(``{{actionResults}}``). A last call writes the reply from the steps
(``multiStepSummaryTemplate``), which is delivered as the turn's one reply (action
``MULTI_STEP_SUMMARY``). Needs a model that follows structured formats; without one the turn
is single-shot.

Differences from elizaOS, on purpose: an action's own callback texts (``"Noted: ..."``) are
kept in the step's outcome for the summary instead of being dropped; a provider is composed
through ``compose_state`` (timeout, isolation, the turn's cache) rather than called directly,
and only if it is registered and not private; the templates say that the steps are data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.messaging.prompt_data import quote_block
from core.messaging.response_parser import parse_tag
from core.messaging.templates import MULTI_STEP_DECISION_TEMPLATE, MULTI_STEP_SUMMARY_TEMPLATE, compose_prompt
from core.settings.messaging import MAX_MULTISTEP_ITERATIONS
from core.types import Content, Memory, ModelType, State

if TYPE_CHECKING:
    from core.messaging.service import MessageResult, _Turn

logger = logging.getLogger(__name__)


@dataclass
class Step:
    """One step's outcome: what ran (a provider or an action), whether it worked, its text."""

    name: str
    success: bool
    text: str = ""

    def line(self, number: int) -> str:
        outcome = "succeeded" if self.success else "failed"
        return f"{number}. {self.name} {outcome}: {quote_block(self.text, '       ') or '(no output)'}"


async def run_multi_step(turn: _Turn, state: State) -> tuple[MessageResult, State]:
    """Run the decide → act loop, then deliver the summary reply.

    Returns:
        The turn's result (mode ``simple`` with the summary, ``none`` without one) and the last state.

    Raises:
        ModelError: a model call failed.
    """
    from core.messaging.service import prompt_values, requested_providers

    runtime, message = turn.runtime, turn.message
    steps: list[Step] = []
    for _ in range(MAX_MULTISTEP_ITERATIONS.read(runtime)):
        values = {**prompt_values(runtime, state), "actionResults": _steps_text(steps)}
        template = runtime.character.templates.get("multiStepDecisionTemplate") or MULTI_STEP_DECISION_TEMPLATE
        raw = str(await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": compose_prompt(template, values)}))
        if (parse_tag(raw, "isFinish") or "").lower() == "true":
            break
        names = [n.strip().upper() for n in (parse_tag(raw, "providers") or "").split(",") if n.strip()]
        action = (parse_tag(raw, "action") or "").strip().upper()
        runnable = requested_providers(runtime, names, state)
        if not runnable and not action:
            logger.info("multi-step: no provider or action chosen; finishing after %d steps", len(steps))
            break
        if runnable:
            state = await runtime.compose_state(message, include_list=runnable, only_include=True)
            steps += [_provider_step(state, name) for name in runnable]
        if action:
            steps.append(await _action_step(turn, state, action, parse_tag(raw, "thought") or ""))
    return await _summarise(turn, state, steps), state


def _provider_step(state: State, name: str) -> Step:
    result = state.data.get("providers", {}).get(name)
    text = result.text if result is not None else ""
    return Step(name, bool(text), text)


async def _action_step(turn: _Turn, state: State, action: str, thought: str) -> Step:
    """Run one action; its callback texts are kept for the summary, not sent to the user."""
    runtime, message = turn.runtime, turn.message
    said: list[str] = []

    async def keep(content: Content) -> list[Memory]:
        if content.text:
            said.append(content.text)
        return []

    plan = Memory(
        entity_id=runtime.agent_id,
        agent_id=runtime.agent_id,
        room_id=message.room_id,
        content=Content(text="", thought=thought, actions=[action], source=message.content.source),
    )
    [result] = await runtime.process_actions(message, [plan], state, keep)
    text = "\n".join([*said, result.text or result.error or ""]).strip()
    return Step(action, result.success, text)


async def _summarise(turn: _Turn, state: State, steps: list[Step]) -> MessageResult:
    runtime = turn.runtime
    template = runtime.character.templates.get("multiStepSummaryTemplate") or MULTI_STEP_SUMMARY_TEMPLATE
    values = {**state.values, "actionResults": _steps_text(steps)}
    raw = str(await runtime.use_model(ModelType.TEXT_LARGE, {"prompt": compose_prompt(template, values)}))
    text = parse_tag(raw, "text") or ""
    if not text:
        return turn._result("none")
    thought = parse_tag(raw, "thought") or "Final user-facing message after task completion."
    content = Content(text=text, thought=thought, actions=["MULTI_STEP_SUMMARY"], source=turn.message.content.source)
    await turn.deliver(content)
    return turn._result("simple")


def _steps_text(steps: list[Step]) -> str:
    return "\n".join(step.line(i) for i, step in enumerate(steps, 1)) or "No steps yet."
