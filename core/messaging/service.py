"""The message pipeline (elizaOS ``DefaultMessageService.handleMessage``), for one turn.

start run → ``before_message`` hooks → store message → compose state (with ENTITIES, as
elizaOS) → should respond → one model call (a JSON schema where the provider takes one, else
elizaOS's XML, else plain chat; streamed when asked) → parse → the providers the model asked
for are composed (and the plan written again with them) → actions → store reply (unless a
newer message superseded it) → evaluators → ``after_message`` hooks → end run. With
``USE_MULTI_STEP`` the model plans one action at a time instead (``core.messaging.multi_step``).
A turn longer than ``RUN_TIMEOUT_S`` emits ``RUN_TIMEOUT`` and fails. The embedding requests of
the message and its replies go in one ``SendMessageBatch`` once the replies are stored, while
the evaluators run; what is left (an evaluator's facts, or everything after a failure) is sent
when the turn ends, whatever happened.

Differences from elizaOS, on purpose:

* When the model asks for providers, they are composed and the *plan* is written again with
  them (one more call); elizaOS's REPLY action writes the text again with ``replyTemplate``.
  Here REPLY sends the text it was given, so a plan without providers costs one call.
* A provider the model names is run only if it is registered and not ``private``: the model
  cannot reach a private provider (elizaOS runs any name it is given).
* The second plan's own ``<providers>`` are not honoured: one round of context per turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from core.bootstrap.providers import system_prompt
from core.bootstrap.shared import cached_agent_state
from core.callbacks import call
from core.db.adapter import ParticipantUserState
from core.db.pipelined import pipelined
from core.embeddings.query import prefetched_queries
from core.errors import ModelError
from core.events import EventType
from core.messaging.examples import action_examples
from core.messaging.response_parser import MalformedResponseError, ParsedResponse, parse_response
from core.messaging.should_respond import Decision, should_respond
from core.messaging.streaming import StreamCallback, TextElementStream, plain_stream
from core.messaging.templates import (
    DYNAMIC_PROVIDERS_INSTRUCTION,
    MESSAGE_HANDLER_OBJECT_TEMPLATE,
    MESSAGE_HANDLER_TEMPLATE,
    compose_prompt,
)
from core.plugin import Reject
from core.runtime import AgentRuntime
from core.settings.agents import MAX_PARSE_RETRIES
from core.settings.messaging import RUN_TIMEOUT_S, USE_MULTI_STEP
from core.types import ChannelType, Content, Memory, ModelType, State
from core.types.memory import now_ms

logger = logging.getLogger(__name__)

#: Recent turns given to a plain-chat model: a small context window (SmolLM2: 2,048 tokens).
PLAIN_HISTORY_TURNS = 8
#: Actions that need no action handler: the response is sent as it is ("simple" mode).
SIMPLE_ACTIONS = {"REPLY", "NONE"}
#: Providers composed on every message although dynamic (elizaOS's first composeState names
#: ENTITIES): who is in the room is needed to answer anyone. Unregistered names are skipped.
EVERY_TURN_PROVIDERS = ("ENTITIES",)


class RunTimeoutError(ModelError):
    """The turn ran longer than ``RUN_TIMEOUT_S`` (elizaOS "Run exceeded timeout")."""


Mode = Literal["simple", "actions", "none"]
#: ``on_response(content)``: callback mode, called with each reply as it is stored.
ResponseCallback = Callable[[Content], Awaitable[None] | None]


@dataclass
class MessageResult:
    """What a turn produced.

    Attributes:
        message_id: The stored incoming message.
        room_id: Its room.
        did_respond: Whether the agent answered.
        mode: ``simple`` (reply sent as written), ``actions`` (action handlers ran) or ``none``.
        responses: The stored reply memories, in order.
        run_id: The turn's run (model usage logs carry it).
        superseded: A newer message arrived in the room before the reply was stored, so the
            reply was dropped.
        rejected: Why a ``before_message`` hook refused the message (then nothing was stored).
        stopped: In a group, the agent was told to stop (should-respond STOP).
    """

    message_id: UUID
    room_id: UUID
    did_respond: bool
    mode: Mode
    responses: list[Memory] = field(default_factory=list)
    run_id: UUID | None = None
    superseded: bool = False
    rejected: str | None = None
    stopped: bool = False


async def handle_message(
    runtime: AgentRuntime,
    message: Memory,
    channel_type: ChannelType,
    *,
    on_stream_chunk: StreamCallback | None = None,
    on_response: ResponseCallback | None = None,
    announce: bool = True,
) -> MessageResult:
    """Run one turn for ``message`` (already validated; its connection already ensured).

    The user's message is stored first, so it is kept whatever happens next; embedding
    requests are sent and the run is ended before returning, even on failure (elizaOS can
    leave a run open).

    Args:
        runtime: The agent's runtime for this invocation.
        message: The incoming message.
        channel_type: The room's kind; direct channels skip the should-respond decision.
        on_stream_chunk: Receives the reply's text while the model writes it.
        on_response: Receives each reply as soon as it is stored, before evaluators run.
        announce: Emit ``MESSAGE_RECEIVED`` once the message is stored; False when a
            connector's own ``MESSAGE_RECEIVED`` started the turn (one event per message).

    Raises:
        ModelError: the model failed, or its answer stayed unreadable after retries.
        RunTimeoutError: the turn took longer than ``RUN_TIMEOUT_S`` (``RUN_TIMEOUT`` emitted).
    """
    run_id = runtime.start_run(message.room_id)
    runtime.buffer_logs()  # the turn's usage and action logs: written with its reply, the rest at its end
    started = now_ms()
    run: dict[str, Any] = {
        "runId": run_id,
        "messageId": message.id,
        "roomId": message.room_id,
        "entityId": message.entity_id,
        "source": message.content.source,
        "startTime": started,
    }
    await runtime.emit_event(EventType.RUN_STARTED, {**run, "status": "started"})
    status = "error"
    timeout_s = RUN_TIMEOUT_S.read(runtime)
    try:
        async with asyncio.timeout(timeout_s) as deadline:
            result = await _run(runtime, message, channel_type, run, on_stream_chunk, on_response, announce)
        status = "rejected" if result.rejected else "completed"
        return result
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        status = "timeout"
        elapsed = now_ms() - started
        await runtime.emit_event(
            EventType.RUN_TIMEOUT, {**run, "status": status, "duration": elapsed, "error": "Run exceeded timeout"}
        )
        raise RunTimeoutError(f"the turn exceeded RUN_TIMEOUT_S={timeout_s:g}", retryable=True) from exc
    finally:
        await runtime.flush_embeddings()
        await runtime.emit_event(EventType.RUN_ENDED, {**run, "status": status, "endTime": now_ms()})
        await runtime.write_logs()
        runtime.end_run()
        # The turn's provider results (32 recent memories among them) would otherwise stay in the
        # warm container's cache until evicted: 8 MiB of RSS at the default size (bench/memory_rss.py).
        runtime.blueprint.state_cache.discard(message.id)


async def _run(
    runtime: AgentRuntime,
    message: Memory,
    channel_type: ChannelType,
    run: dict[str, Any],
    on_stream_chunk: StreamCallback | None,
    on_response: ResponseCallback | None,
    announce: bool,
) -> MessageResult:
    """The turn inside its run: hooks, storing the message, the response, ``after_message``."""
    accepted = await _before_message(runtime, message)
    if isinstance(accepted, Reject):
        return MessageResult(message.id, message.room_id, False, "none", run_id=run["runId"], rejected=accepted.reason)
    message = accepted
    await runtime.create_memory(message, "messages")
    runtime.queue_embedding_generation(message, "high")
    if announce:  # ``runId`` marks it as handled: core.messaging.connector answers only the others
        await runtime.emit_event(EventType.MESSAGE_RECEIVED, {**run, "message": message, "callback": on_response})
    result = await _Turn(runtime, message, channel_type, on_stream_chunk, on_response).run()
    result.run_id = run["runId"]
    await runtime.call_hooks("after_message", message, result)
    return result


async def _before_message(runtime: AgentRuntime, message: Memory) -> Memory | Reject:
    """Let each plugin's ``before_message`` hook rewrite or reject the message, in order."""
    for hook in runtime.blueprint.hooks("before_message"):
        try:
            outcome = await hook(runtime, message)
        except Exception:
            logger.exception("a before_message hook failed; the message goes on unchanged")
            continue
        if isinstance(outcome, Reject):
            logger.info("message %s rejected by a plugin: %s", message.id, outcome.reason)
            return outcome
        if isinstance(outcome, Memory):
            message = outcome
    return message


class _Turn:
    """One response to one stored message."""

    def __init__(
        self,
        runtime: AgentRuntime,
        message: Memory,
        channel_type: ChannelType,
        on_stream_chunk: StreamCallback | None,
        on_response: ResponseCallback | None,
    ) -> None:
        self.runtime = runtime
        self.message = message
        self.channel_type = channel_type
        self.on_stream_chunk = on_stream_chunk
        self.on_response = on_response
        self.replies: list[Memory] = []
        self.superseded = False

    async def run(self) -> MessageResult:
        state, agent_state = await self._first_state()
        result, state = await self._respond(state, agent_state)
        # The turn's one SendMessageBatch (message and replies) runs while the evaluators do.
        sending = asyncio.ensure_future(self.runtime.flush_embeddings())
        try:
            await self.runtime.evaluate(self.message, state, did_respond=result.did_respond, responses=self.replies)
        finally:
            await sending
        return result

    async def _first_state(self) -> tuple[State, ParticipantUserState | None]:
        """The composed state and the agent's state in the room (MUTED/FOLLOWED), read together.

        The room state is read among the providers' pipelined reads (the room actions validate
        on the same read), so it costs the turn no round trip of its own.
        """
        await prefetched_queries(self.runtime)  # their searches then join the reads below
        async with pipelined(getattr(self.runtime.adapter, "pool", None)):
            return await asyncio.gather(
                self.runtime.compose_state(self.message, include_list=EVERY_TURN_PROVIDERS),
                cached_agent_state(self.runtime, self.message.room_id),
            )

    async def _respond(
        self, state: State, agent_state: ParticipantUserState | None = None
    ) -> tuple[MessageResult, State]:
        decision = await should_respond(self.runtime, self.message, state, self.channel_type, agent_state)
        if decision is not Decision.RESPOND:
            return self._result("none", stopped=decision is Decision.STOP), state
        if USE_MULTI_STEP.read(self.runtime) and _follows_formats(self.runtime):
            from core.messaging.multi_step import run_multi_step  # only agents that use it pay the import

            return await run_multi_step(self, state)
        parsed = await self._generate(state)
        parsed, state = await self._with_requested_providers(parsed, state)
        return await self._act(parsed, state), state

    async def _with_requested_providers(self, parsed: ParsedResponse, state: State) -> tuple[ParsedResponse, State]:
        """Compose the providers the model asked for, then have it write the plan again with them.

        elizaOS composes ``responseContent.providers`` before its actions run; the second plan
        sees the providers' text in ``{{providers}}`` (its own provider requests are ignored).
        """
        names = requested_providers(self.runtime, parsed.providers, state)
        if not names:
            return parsed, state
        state = await self.runtime.compose_state(self.message, include_list=names, only_include=True)
        return await self._generate(state, offer_providers=False), state

    async def _act(self, parsed: ParsedResponse, state: State) -> MessageResult:
        if not parsed.actions or "IGNORE" in parsed.actions:
            return self._result("none")
        if set(parsed.actions) <= SIMPLE_ACTIONS:
            if parsed.text:
                await self.deliver(_content(parsed, self.message))
            return self._result("simple")
        plan = Memory(
            entity_id=self.runtime.agent_id,
            agent_id=self.runtime.agent_id,
            room_id=self.message.room_id,
            content=_content(parsed, self.message),
        )
        await self.runtime.process_actions(self.message, [plan], state, self.deliver)
        return self._result("actions")

    def _result(self, mode: Mode, *, stopped: bool = False) -> MessageResult:
        return MessageResult(
            self.message.id,
            self.message.room_id,
            did_respond=bool(self.replies),
            mode=mode,
            responses=self.replies,
            superseded=self.superseded,
            stopped=stopped,
        )

    async def deliver(self, content: Content) -> list[Memory]:
        """The action callback: store a reply (unless superseded) and hand it to ``on_response``."""
        if self.superseded:
            return []
        reply = _reply_memory(self.runtime, self.message, content)
        if not await self._store_reply(reply):
            logger.info(
                "a newer message arrived in room %s; the reply to %s is dropped", self.message.room_id, self.message.id
            )
            self.superseded = True
            return []
        self.runtime.queue_embedding_generation(reply, "normal")
        self.replies.append(reply)
        await self.runtime.emit_event(
            EventType.MESSAGE_SENT,
            {
                "message": reply,
                "runId": self.runtime.get_current_run_id(),
                "source": self.message.content.source,
                "callback": self.on_response,
            },
        )
        if self.on_response is not None:
            await call(self.on_response, content)
        return [reply]

    async def _store_reply(self, reply: Memory) -> bool:
        """Store the reply with the turn's logs so far, in one round trip; False when superseded."""
        logs = self.runtime.take_logs()
        try:
            return await self.runtime.adapter.create_reply(reply, "messages", answering=self.message, logs=logs)
        except BaseException:
            for entry in logs:  # kept again for the turn's end
                await self.runtime.log(entry)
            raise

    async def _generate(self, state: State, *, offer_providers: bool = True) -> ParsedResponse:
        """JSON schema where a provider takes one (and no stream is asked for), else elizaOS's
        XML for models that follow formats, else a plain chat reply."""
        if self.on_stream_chunk is None and _takes_json_schema(self.runtime):
            return await self._generate_object(state, offer_providers)
        if _follows_formats(self.runtime):
            return await self._generate_structured(state, offer_providers)
        return await self._generate_plain(state)

    def _prompt(self, default_template: str, state: State, offer_providers: bool) -> str:
        """The character's ``messageHandlerTemplate`` (else ours) filled from the state."""
        template = self.runtime.character.templates.get("messageHandlerTemplate") or default_template
        return compose_prompt(template, prompt_values(self.runtime, state, offer_providers))

    async def _generate_object(self, state: State, offer_providers: bool) -> ParsedResponse:
        """The response as a ``ResponsePlan`` through OBJECT_LARGE with the provider's schema support.

        ``get_object`` validates the answer and repairs it once; a second failure fails the
        turn cleanly (the user's message is already stored).
        """
        plan = await self.runtime.get_object(
            ResponsePlan,
            self._prompt(MESSAGE_HANDLER_OBJECT_TEMPLATE, state, offer_providers),
            model_type=ModelType.OBJECT_LARGE,
            system=state.values.get("system"),
        )
        return ParsedResponse(
            thought=plan.thought,
            actions=[a.strip().upper() for a in plan.actions if a.strip()],
            providers=plan.providers,
            text=plan.text,
        )

    async def _generate_structured(self, state: State, offer_providers: bool) -> ParsedResponse:
        prompt = self._prompt(MESSAGE_HANDLER_TEMPLATE, state, offer_providers)
        attempts = MAX_PARSE_RETRIES.read(self.runtime) + 1
        for attempt in range(attempts):
            params = {"prompt": prompt, "system": state.values.get("system")}
            if self.on_stream_chunk is not None:
                params["on_stream_chunk"] = TextElementStream(self.on_stream_chunk).feed
            raw = await self.runtime.use_model(ModelType.TEXT_LARGE, params)
            try:
                return parse_response(str(raw))
            except MalformedResponseError:
                logger.warning("unreadable model answer (attempt %d of %d)", attempt + 1, attempts)
        raise ModelError("the model's answer could not be parsed", retryable=False)

    async def _generate_plain(self, state: State) -> ParsedResponse:
        """For models that cannot be trusted with the action format (a tiny local model).

        Only called once the agent has decided to answer, so REPLY is the one sensible action:
        ask for a plain chat reply, with the history as chat turns and a repeat penalty.
        """
        history = state.data.get("providers", {}).get("RECENT_MESSAGES")
        recent: list[Memory] = list(history.data.get("recentMessages", [])) if history else []
        if not any(m.id == self.message.id for m in recent):
            recent.append(self.message)
        chat = [
            {"role": "assistant" if m.entity_id == self.runtime.agent_id else "user", "content": m.text}
            for m in recent[-(PLAIN_HISTORY_TURNS * 2) :]
            if m.text
        ]
        params = {
            "system": _plain_system_prompt(self.runtime),
            "messages": chat,
            "repeat_penalty": 1.3,
            "max_tokens": 120,
        }
        if self.on_stream_chunk is not None:
            params["on_stream_chunk"] = plain_stream(self.on_stream_chunk)
        text = await self.runtime.use_model(ModelType.TEXT_LARGE, params)
        return ParsedResponse(actions=["REPLY"], text=str(text).strip())


class ResponsePlan(BaseModel):
    """What the model answers with when it takes a JSON schema (the XML block's fields)."""

    thought: str = ""
    actions: list[str] = Field(min_length=1, description='Action names in order, e.g. ["REPLY"]')
    providers: list[str] = []
    text: str = ""


def prompt_values(runtime: AgentRuntime, state: State, offer_providers: bool = True) -> dict[str, Any]:
    """The state's values plus what the message templates add: the dynamic providers on offer
    (``{{dynamicProviders}}``) and the available actions' examples (``{{actionExamples}}``)."""
    values = dict(state.values)
    offered = _offered_providers(runtime, state) if offer_providers else []
    if offered:
        # The PROVIDERS provider, when composed, already lists them in the providers' text.
        listed = "PROVIDERS" in state.data.get("providers", {})
        listing = "(listed under # Providers above)" if listed else "\n".join(_offer(p) for p in offered)
        values["dynamicProviders"] = compose_prompt(DYNAMIC_PROVIDERS_INSTRUCTION, {**values, "providerList": listing})
    available = _available_action_names(state)
    actions = [a for a in runtime.actions.values() if available is None or a.name in available]
    values.setdefault("actionExamples", action_examples(actions, runtime.character.name))
    return values


def requested_providers(runtime: AgentRuntime, names: list[str], state: State) -> list[str]:
    """The names the model asked for that can run: registered, not private, not composed yet."""
    composed = state.data.get("providers", {})
    providers = runtime.blueprint.providers
    return [n for n in dict.fromkeys(names) if n in providers and not providers[n].private and n not in composed]


def _offer(provider: Any) -> str:
    return f"- {provider.name}: {provider.description}"


def _offered_providers(runtime: AgentRuntime, state: State) -> list[Any]:
    composed = state.data.get("providers", {})
    return [p for p in runtime.blueprint.providers.values() if p.dynamic and not p.private and p.name not in composed]


def _available_action_names(state: State) -> set[str] | None:
    result = state.data.get("providers", {}).get("ACTIONS")
    return set(result.data.get("actions", [])) if result is not None else None


def _follows_formats(runtime: AgentRuntime) -> bool:
    return "structured_output" in runtime.model_capabilities(ModelType.TEXT_LARGE)


def _takes_json_schema(runtime: AgentRuntime) -> bool:
    return runtime.blueprint.models.has(ModelType.OBJECT_LARGE) and "structured_output" in runtime.model_capabilities(
        ModelType.OBJECT_LARGE
    )


def _plain_system_prompt(runtime: AgentRuntime) -> str:
    character = runtime.character
    style = " ".join(character.all_style("chat")[:4])
    return (
        f"{system_prompt(runtime)}\nYou are {character.name}. {' '.join(character.bio[:2])}\n"
        f"{style}\nAnswer in one or two short sentences, in character."
    ).strip()


def _content(parsed: ParsedResponse, message: Memory) -> Content:
    return Content(
        text=parsed.text,
        thought=parsed.thought or None,
        actions=parsed.actions,
        providers=parsed.providers or None,
        source=message.content.source,
    )


def _reply_memory(runtime: AgentRuntime, message: Memory, content: Content) -> Memory:
    content.in_reply_to = message.id
    content.channel_type = message.content.channel_type
    reply = Memory(
        entity_id=runtime.agent_id,
        agent_id=runtime.agent_id,
        room_id=message.room_id,
        world_id=message.world_id,
        content=content,
    )
    # A reply stored in the same millisecond as its message must still sort after it.
    reply.created_at = max(reply.created_at, message.created_at + 1)
    return reply
