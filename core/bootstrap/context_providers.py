"""Built-in providers that need no storage, or one read: TIME, ANXIETY, CAPABILITIES, PROVIDERS,
EVALUATORS, ACTION_STATE, ATTACHMENTS (elizaOS ``plugin-bootstrap/src/providers``).

Names, descriptions, texts, flags and positions are elizaOS 1.7's; where one differs the
docstring says why.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.messaging.prompt_data import clean_name, quote_block, quote_data
from core.plugin import ActionResult, Provider, ProviderResult
from core.types import ChannelType, Memory, State
from core.types.media import Media, attachments_of

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

#: ACTION_STATE reads this many recent action results of the room (elizaOS: 20 recent messages).
RECENT_ACTION_RESULTS = 20
#: ATTACHMENTS hides the text of attachments older than this before the newest one (elizaOS: 1 hour).
ATTACHMENT_TEXT_WINDOW_MS = 60 * 60 * 1000


def add_header(header: str, body: str) -> str:
    """elizaOS ``addHeader``: ``header`` and ``body`` on separate lines, or ``""`` for an empty body."""
    return f"{header}\n{body}\n" if body else ""


# -- TIME ---------------------------------------------------------------------------------


async def _time(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    now = datetime.now(UTC)
    # Intl.DateTimeFormat("en-US", {dateStyle: "full", timeStyle: "long", timeZone: "UTC"}).
    readable = f"{now:%A, %B} {now.day}, {now:%Y} at {now.hour % 12 or 12}:{now:%M:%S %p} UTC"
    text = (
        f"The current date and time is {readable}. "
        "Please use this as your reference for any time-based operations or responses."
    )
    return ProviderResult(text=text, values={"time": readable}, data={"time": now.isoformat()})


# -- ANXIETY ------------------------------------------------------------------------------

_GROUP_ANXIETY = (
    "As an AI, your responses tend to be too long and verbose, and you respond when you shouldn't. You also "
    "tend to repeat yourself. Please don't speak and use IGNORE instead of responding when you aren't sure what "
    "to do.",
    "You often try too hard to be helpful and end up giving unnecessary information. When in doubt, it's better "
    "to use IGNORE than to give a potentially unhelpful response.",
    "Your eagerness to help sometimes leads to overly complex answers. If you're not completely confident, please "
    "use IGNORE rather than risking confusion.",
    "AI assistants like you tend to be too talkative and agreeable. Don't feel obligated to respond to everything "
    "- using IGNORE is often better than an uncertain answer.",
    "You have a habit of providing excessive detail and context. Keep it brief and use IGNORE if you don't have a "
    "clear, direct response.",
    "Your responses often include unnecessary explanations and caveats. When uncertain, simply use IGNORE instead "
    "of a long-winded, hedged response.",
    "As an AI, you seem compelled to always give an answer, even when unsure. It's better to use IGNORE than to "
    "provide potentially incorrect or rambling responses.",
    "You frequently over-explain simple concepts. If you can't be concise and confident in your response, please "
    "default to using IGNORE.",
    "Your helpful nature sometimes results in verbose, meandering responses. When in doubt, use IGNORE rather "
    "than attempting to cover every possibility.",
    "Like many AI assistants, you try to be too comprehensive. Remember that IGNORE is a valid response when you "
    "can't be both brief and certain.",
    "You often provide more detail than necessary in an attempt to be thorough. If you can't give a clear, "
    "concise answer, please use IGNORE instead.",
    "CRITICAL: When someone just says 'ok', 'yes', 'good', 'right', 'yep', etc. - this is conversational "
    "closure. Do NOT respond with another acknowledgment. Use IGNORE to let the conversation end naturally.",
    "Watch out for ping-pong loops: if you and another agent are just exchanging brief acknowledgments back and "
    "forth ('Good.' 'Yep.' 'Right.' 'Sure.'), STOP immediately. Use IGNORE.",
    "If the last few messages are just short confirmations going back and forth, the conversation is OVER. Do "
    "not extend it with another acknowledgment. Use IGNORE.",
)
_DIRECT_ANXIETY = (
    "Be engaging and helpful in direct conversations, but keep responses focused and relevant.",
    "In DMs, you should be responsive and friendly while maintaining professionalism and clarity.",
    "While being helpful in direct messages, avoid unnecessary tangents or over-explaining.",
    "Engage naturally in DMs but stay on topic - no need to explain every detail.",
    "Be conversational and helpful in direct chats while keeping responses concise.",
    "In private conversations, focus on being helpful while avoiding excessive verbosity.",
    "Maintain a friendly and responsive tone in DMs without overcomplicating your answers.",
    "Direct messages should be engaging but focused - avoid unnecessary elaboration.",
    "Be natural and helpful in DMs while keeping your responses clear and to-the-point.",
    "Respond thoughtfully in direct conversations without falling into over-explanation.",
)
_DM_ANXIETY = (
    "Engage naturally in DMs while keeping responses focused and relevant.",
    "Be responsive to questions and maintain conversation flow in direct messages.",
    "Show personality and engagement in DMs while staying professional and clear.",
    "In private chats, be helpful and friendly while avoiding excessive detail.",
    "Maintain natural conversation in DMs without over-explaining or being too verbose.",
    "Be engaging but concise in direct messages - focus on clear communication.",
    "Keep the conversation flowing in DMs while staying on topic and relevant.",
    "Show personality and warmth in direct chats while maintaining clarity.",
    "Be responsive and helpful in DMs without falling into unnecessary elaboration.",
    "Engage meaningfully in private conversations while keeping responses focused.",
)
_VOICE_ANXIETY = (
    "Keep voice responses extremely brief and to the point.",
    "In voice channels, use short, clear statements only.",
    "Voice responses should be concise and immediately relevant.",
    "Speak in short, clear sentences in voice conversations.",
    "Keep voice channel communication brief and focused.",
    "Use minimal words to convey your message in voice chats.",
    "Be direct and concise when speaking in voice channels.",
    "Voice responses should be short and immediately actionable.",
    "Minimize verbosity in voice communications.",
    "Keep voice channel interactions brief and purposeful.",
)
ANXIETY_HEADER = "# You are roleplaying as a character, but as an AI model, you are too verbose and eager."


def anxiety_examples(channel_type: str | None) -> tuple[str, ...]:
    """The pool elizaOS draws from for a channel type (GROUP, DM, voice, anything else)."""
    if channel_type == ChannelType.GROUP:
        return _GROUP_ANXIETY
    if channel_type == ChannelType.DM:
        return _DM_ANXIETY
    if channel_type in {ChannelType.VOICE_GROUP, ChannelType.VOICE_DM}:
        return _VOICE_ANXIETY
    return _DIRECT_ANXIETY


async def _anxiety(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    chosen = random.sample(anxiety_examples(message.content.channel_type), 3)
    anxiety = add_header(ANXIETY_HEADER, "\n".join(chosen))
    return ProviderResult(text=anxiety, values={"anxiety": anxiety}, data={"anxiety": chosen})


# -- CAPABILITIES, PROVIDERS, EVALUATORS ---------------------------------------------------


async def _capabilities(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    services = runtime.get_all_services()
    if not services:
        return ProviderResult(text="No services are currently registered.")
    name = runtime.character.name
    lines = [
        f"{service_type} - {service.capability_description.replace('{{agentName}}', name)}"
        for service_type, started in services.items()
        for service in started
        if service.capability_description
    ]
    if not lines:
        return ProviderResult(text="No capabilities found.")
    return ProviderResult(text=f"# {name}'s Capabilities\n\n" + "\n".join(lines), data={"capabilities": lines})


async def _providers(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    every = runtime.providers
    describe = [f"- **{p.name}**: {p.description or 'No description available'}" for p in every]
    dynamic = [line for p, line in zip(every, describe, strict=True) if p.dynamic]
    header = "# Providers\n\nThese providers are available for the agent to select and use:"
    text = add_header(header, "\n".join(dynamic) or "No dynamic providers are currently available.")
    return ProviderResult(
        text=text,
        values={"providersWithDescriptions": add_header("# Available Providers", "\n".join(describe))},
        data={
            "dynamicProviders": [{"name": p.name, "description": p.description} for p in every if p.dynamic],
            "allProviders": [{"name": p.name, "description": p.description, "dynamic": p.dynamic} for p in every],
        },
    )


async def _evaluators(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    valid = [e for e in runtime.evaluators if await _validates(e, runtime, message, state)]
    if not valid:
        empty = {"evaluatorsData": [], "evaluators": "", "evaluatorNames": "", "evaluatorExamples": ""}
        return ProviderResult(values=empty)
    evaluators = add_header("# Available Evaluators", ",\n".join(f"'{e.name}: {e.description}'" for e in valid))
    examples = add_header("# Evaluator Examples", _evaluator_examples(valid))
    values = {
        "evaluatorsData": [e.name for e in valid],
        "evaluators": evaluators,
        "evaluatorNames": ",\n".join(f"'{e.name}'" for e in valid),
        "evaluatorExamples": examples,
    }
    return ProviderResult(text=f"{evaluators}\n\n{examples}", values=values)


async def _validates(evaluator: Any, runtime: AgentRuntime, message: Memory, state: State) -> bool:
    try:
        return evaluator.validate is None or bool(await evaluator.validate(runtime, message, state))
    except Exception:  # elizaOS skips an evaluator whose validate throws, silently
        return False


def _evaluator_examples(evaluators: list[Any]) -> str:
    # Evaluator examples are a field elizaOS has and ``core.plugin.Evaluator`` may not (yet).
    blocks = []
    for evaluator in evaluators:
        for example in getattr(evaluator, "examples", ()) or ():
            messages = "\n".join(
                f"{m['name']}: {m['content']['text']}" for m in example.get("messages", ()) if m.get("content")
            )
            outcome = f"\n\nOutcome:\n{example['outcome']}" if example.get("outcome") else ""
            blocks.append(f"Prompt:\n{example.get('prompt', '')}\n\nMessages:\n{messages}{outcome}")
    return "\n\n".join(blocks)


# -- ACTION_STATE -------------------------------------------------------------------------


async def _action_state(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    results: list[ActionResult] = list(state.data.get("actionResults") or [])
    results_text = (
        add_header("# Previous Action Results", "\n\n".join(_format_result(i, r) for i, r in enumerate(results, 1)))
        if results
        else "No previous action results available."
    )
    # Ours live in their own table (elizaOS filters them out of the messages).
    recent = await runtime.get_memories(message.room_id, "action_results", RECENT_ACTION_RESULTS)
    history = add_header("# Recent Action History", _format_history(recent)) if recent else ""
    text = "\n\n".join(t for t in (results_text, history) if t)
    return ProviderResult(
        text=text or "No action state available",
        values={
            "hasActionResults": bool(results),
            "actionResults": results_text,
            "completedActions": sum(1 for r in results if r.success),
            "failedActions": sum(1 for r in results if not r.success),
        },
        data={"actionResults": results, "recentActionMemories": recent},
    )


def _format_result(index: int, result: ActionResult) -> str:
    name = result.data.get("actionName") or "Unknown Action"
    lines = [f"**{index}. {name}** - {'Success' if result.success else 'Failed'}"]
    if result.text:
        lines.append(f"   Output: {quote_block(result.text)}")
    if result.error:
        lines.append(f"   Error: {quote_block(result.error)}")
    if result.values:
        values = "\n".join(f"   - {k}: {quote_data(json.dumps(v, default=str))}" for k, v in result.values.items())
        lines.append(f"   Values:\n{values}")
    return "\n".join(lines)


def _format_history(memories: list[Memory]) -> str:
    runs: dict[str, list[Memory]] = {}
    for memory in memories:
        run_id = _extra(memory.metadata.model_extra, "run_id", "runId") or "unknown"
        runs.setdefault(str(run_id), []).append(memory)
    blocks = []
    for run_id, items in runs.items():
        lines = [_history_line(m) for m in sorted(items, key=lambda m: m.created_at)]
        blocks.append(f"**Run {str(run_id)[:8]}**\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def _extra(extra: dict[str, Any] | None, *keys: str) -> Any:
    # Extra fields keep the spelling they were written with: snake_case here, camelCase from elizaOS.
    return next((extra[k] for k in keys if extra and extra.get(k) is not None), None)


def _history_line(memory: Memory) -> str:
    name = (memory.content.actions or ["Unknown"])[0]
    outcome = _extra(memory.content.model_extra, "action_result", "actionResult") or {}
    status = "completed" if outcome.get("success", True) else "failed"
    return f"  - {name} ({status}): {quote_block(memory.text)}"


# -- ATTACHMENTS --------------------------------------------------------------------------


async def _attachments(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    current = attachments_of(message)
    recent = await runtime.get_memories(message.room_id, "messages", runtime.get_conversation_length())
    everything = current + _earlier_attachments(recent, {a.id for a in current})
    text = add_header("# Attachments", "\n".join(_format_attachment(a) for a in everything))
    return ProviderResult(text=text, values={"attachments": text}, data={"attachments": everything})


def _earlier_attachments(recent: list[Memory], current_ids: set[str]) -> list[Media]:
    with_media = [m for m in recent if attachments_of(m)]
    if not with_media:
        return []
    # elizaOS keeps the text of attachments from the hour before the newest one, hides the rest.
    cutoff = max(m.created_at for m in with_media) - ATTACHMENT_TEXT_WINDOW_MS
    found = []
    for memory in reversed(with_media):  # newest first, as elizaOS lists them
        for media in attachments_of(memory):
            if media.id not in current_ids:
                found.append(media if memory.created_at >= cutoff else media.model_copy(update={"text": "[Hidden]"}))
    return found


def _format_attachment(media: Media) -> str:
    url = media.url or ""
    if url.startswith("data:"):  # a summary instead of the base64 blob, as elizaOS does
        mime = url[5:].split(";")[0].split(",")[0] or "unknown"
        url = f"[Embedded {mime} ~{round(len(media.url) * 3 / 4 / 1024)}KB]"
    return (
        f"ID: {clean_name(media.id)}\n    Name: {clean_name(media.title, default='')}\n    URL: {quote_data(url)}\n"
        f"    Type: {clean_name(media.source or media.content_type, default='')}\n"
        f"    Description: {quote_block(media.description, '        ')}\n"
        f"    Text: {quote_block(media.text, '        ')}\n    "
    )


TIME = Provider(name="TIME", get=_time, description="The current date and time in UTC.")
ANXIETY = Provider(
    name="ANXIETY", get=_anxiety, description="Social directions for the AI to follow based on the channel type"
)
CAPABILITIES = Provider(
    name="CAPABILITIES", get=_capabilities, description="Capabilities of the agent's services, one line each."
)
PROVIDERS = Provider(
    name="PROVIDERS",
    get=_providers,
    description="List of all data providers the agent can use to get additional information",
)
EVALUATORS = Provider(
    name="EVALUATORS",
    get=_evaluators,
    private=True,
    description="Evaluators that can be used to evaluate the conversation after responding",
)
ACTION_STATE = Provider(
    name="ACTION_STATE",
    get=_action_state,
    position=150,
    description="Action results from previous response batches, working memory, and action plan from the "
    "current execution run",
)
ATTACHMENTS = Provider(
    name="ATTACHMENTS",
    get=_attachments,
    dynamic=True,
    description="List of attachments sent during the current conversation, including names, descriptions, "
    "and summaries",
)
