"""Retention as scheduled tasks: message compression, fact consolidation, orphan clean-up.

Three ``TaskWorker``s, run by the scheduled runner (``core.tasks.runner``) for tasks created
once per agent by ``ensure_retention_tasks`` (tagged ``queue``, ``repeat``, ``retention``;
every ``RETENTION_INTERVAL_S``). No timers: Lambda freezes the process between invocations.

* **MESSAGE_RETENTION.** Messages older than ``MESSAGE_RETENTION_DAYS`` are deleted, oldest
  first, at most ``RETENTION_MAX_ROWS`` per run. With ``MESSAGE_RETENTION_SUMMARIZE`` (the
  default) they are first summarised, per room and in chunks of consecutive messages, by
  TEXT_SMALL into a document memory (table ``"summaries"``, metadata ``type: document``,
  ``source: compression``, ``startMs``, ``endMs``, ``messageCount``) whose text carries the
  date range and count; it is queued for embedding (low priority), so a search for what the
  deleted messages said finds the summary. At most ``RETENTION_MAX_SUMMARIES`` model calls
  per run; a chunk whose summary fails keeps its messages (retried next run). A summary's id
  is derived from the ids of the messages it covers, so a run that dies between storing the
  summary and deleting the messages is finished by the next run without a second summary.
  Unset ``MESSAGE_RETENTION_DAYS`` keeps messages forever (deleting people's conversations
  is opt-in).
* **FACT_CONSOLIDATION.** Rooms with more than ``FACTS_MAX_PER_ROOM`` facts keep their best
  ones by ``confidence × 0.5^(age since last confirmed / FACT_HALF_LIFE_DAYS)``; the rest are
  deleted, at most ``RETENTION_MAX_ROWS`` per run. Only rooms that got facts since the last
  run are looked at (the task remembers where it stopped, ``factCursor`` in its metadata;
  changing the cap starts over), so a run reads the new facts, not every fact.
* **ORPHAN_CLEANUP.** Facts about, or naming, entities the agent no longer has are deleted,
  ``RETENTION_MAX_ROWS`` facts looked at per run, resuming where the last run stopped
  (``orphanCursor``) and starting over at the end. Relationships and components need no
  sweep: their entity columns are foreign keys with ``ON DELETE CASCADE``
  (``0002_components_relationships.sql``), so the database removes them with the entity.

Each run is bounded and idempotent (a second run with nothing new to do changes nothing),
emits one Powertools EMF blob (namespace ``POWERTOOLS_METRICS_NAMESPACE``, dimension
``Task``; ``RowsScanned``, ``RowsDeleted``, ``SummariesWritten``, ``SummaryFailures``,
``MoreWork``; off with ``POWERTOOLS_METRICS_DISABLED``) and logs one line. A worker raises
only for invalid settings (``ConfigurationError``), which the runner records as the task's
``lastError``; a failing summary is counted, not raised, so a model outage cannot exhaust the
task's attempts and stop retention for good.

Settings: ``RetentionSettings`` (``core.settings.memory``, with the table of variables), read
per run through ``runtime.get_setting``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from core.events import EventType
from core.messaging.response_parser import parse_tag
from core.messaging.templates import compose_prompt
from core.settings.memory import RetentionSettings
from core.settings.metrics import metrics_namespace
from core.tasks.worker import TaskWorker
from core.types import Content, Memory, MemoryMetadata, ModelType, Task, TaskMetadata
from core.types.memory import now_ms
from core.uuid import create_unique_uuid

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

MESSAGE_RETENTION_TASK = "MESSAGE_RETENTION"
FACT_CONSOLIDATION_TASK = "FACT_CONSOLIDATION"
ORPHAN_CLEANUP_TASK = "ORPHAN_CLEANUP"
RETENTION_TAG = "retention"
#: Where summaries of compressed messages go (metadata type ``document``). Not ``"documents"``:
#: that table holds knowledge documents (``core.knowledge``), listed and searched as such.
SUMMARY_TABLE = "summaries"
#: One summary covers at most this many consecutive messages of a room, and this much text.
SUMMARY_CHUNK_MESSAGES = 100
SUMMARY_CHUNK_CHARS = 12_000
#: Longest message text put in a summary prompt, and longest summary kept (characters).
MAX_MESSAGE_CHARS = 600
MAX_SUMMARY_CHARS = 4_000
#: Rooms with new facts consolidated per run (each room costs one statement).
ROOMS_PER_RUN = 100
#: Fact consolidation re-reads this much time before its cursor: a fact committed late (its
#: ``created_at`` is set before its transaction commits) is still seen.
FACT_CURSOR_SLACK_MS = 300_000
_DAY_MS = 86_400_000

SUMMARY_TEMPLATE = """# Task: Summarise part of a conversation for {{agentName}}'s long-term memory

These {{count}} messages, from {{start}} to {{end}} (UTC), are about to be deleted; your summary is
all that will remain of them. Keep who said what: people's names, their questions and problems,
the answers and fixes given, decisions, facts people stated about themselves, and any names of
software, commands, numbers or links that matter. Write plain prose, at most 200 words.

# Messages
{{messages}}

Answer with only this block:
<summary>the summary</summary>"""


@dataclass
class RetentionReport:
    """What one retention run did (returned by the worker, sent as metrics, logged).

    Attributes:
        task: The task name.
        scanned: Rows looked at (messages, rooms with new facts, or facts).
        deleted: Rows deleted.
        summaries: Summaries written.
        summary_failures: Chunks whose summary failed (their messages are kept).
        more: A bound was reached: work is left for the next run.
        disabled: Nothing to do by configuration (message retention without a retention age).
    """

    task: str
    scanned: int = 0
    deleted: int = 0
    summaries: int = 0
    summary_failures: int = 0
    more: bool = False
    disabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


# -- message retention ---------------------------------------------------------------------------


class _Chunk(NamedTuple):
    room_id: UUID
    messages: tuple[Memory, ...]

    @property
    def summary_id(self) -> UUID:
        # Same messages, same summary id: a re-run after a crash finds the summary it wrote.
        first = self.messages[0]
        return uuid.uuid5(first.agent_id, "compression:" + ",".join(str(m.id) for m in self.messages))


async def compress_messages(
    runtime: AgentRuntime, options: Mapping[str, Any] | None = None, task: Task | None = None
) -> RetentionReport:
    """MESSAGE_RETENTION: summarise (optionally) and delete messages past the retention age.

    Returns:
        What the run did.

    Raises:
        ConfigurationError: invalid settings.
    """
    settings = RetentionSettings.from_runtime(runtime)
    report = RetentionReport(task=MESSAGE_RETENTION_TASK)
    if settings.message_retention_days is None:
        report.disabled = True
        return _emit(runtime, report)
    adapter, agent_id = runtime.adapter, runtime.agent_id
    cutoff = now_ms() - int(settings.message_retention_days * _DAY_MS)
    page = await adapter.list_memories(
        agent_id, table="messages", end_ms=cutoff, newest_first=False, limit=settings.max_rows
    )
    report.scanned, report.more = len(page.memories), page.next_cursor is not None
    if not page.memories:
        return _emit(runtime, report)
    if settings.summarize:
        done = await _summarise_chunks(runtime, _chunks(page.memories), settings, report)
    else:
        done = [m.id for m in page.memories]
    report.deleted = await adapter.delete_many_memories(agent_id, done)
    await _announce_deleted(runtime, [m for m in page.memories if m.id in set(done)])
    return _emit(runtime, report)


async def _announce_deleted(runtime: AgentRuntime, messages: Sequence[Memory]) -> None:
    """MESSAGE_DELETED for each message retention deleted (elizaOS emits it on every delete)."""
    for message in messages:
        await runtime.emit_event(
            EventType.MESSAGE_DELETED,
            {"message": message, "roomId": message.room_id, "source": "retention", "callback": None},
        )


def _chunks(messages: Sequence[Memory]) -> list[_Chunk]:
    """Consecutive messages of each room (rooms by their oldest message), bounded in count and text."""
    by_room: dict[UUID, list[list[Memory]]] = {}
    sizes: dict[UUID, int] = {}
    for message in messages:
        groups = by_room.setdefault(message.room_id, [[]])
        size = min(len(message.text), MAX_MESSAGE_CHARS)
        if groups[-1] and (
            len(groups[-1]) >= SUMMARY_CHUNK_MESSAGES or sizes[message.room_id] + size > SUMMARY_CHUNK_CHARS
        ):
            groups.append([])
            sizes[message.room_id] = 0
        groups[-1].append(message)
        sizes[message.room_id] = sizes.get(message.room_id, 0) + size
    return [_Chunk(room, tuple(group)) for room, groups in by_room.items() for group in groups]


async def _summarise_chunks(
    runtime: AgentRuntime, chunks: list[_Chunk], settings: RetentionSettings, report: RetentionReport
) -> list[UUID]:
    """Write a summary per chunk (reusing one a previous run wrote); the ids of messages now covered."""
    adapter, agent_id = runtime.adapter, runtime.agent_id
    written = await adapter.get_memories_by_ids(agent_id, [c.summary_id for c in chunks], table=SUMMARY_TABLE)
    existing = {m.id: m for m in written}
    speakers = {m.entity_id for c in chunks for m in c.messages}
    names = await adapter.get_entity_names(agent_id, list(speakers))
    names[agent_id] = runtime.character.name
    budget = settings.max_summaries
    done: list[UUID] = []
    for chunk in chunks:
        summary = existing.get(chunk.summary_id)
        if summary is None:
            if budget == 0:
                report.more = True
                continue
            budget -= 1
            summary = await _summarise(runtime, chunk, names)
            if summary is None:
                report.summary_failures += 1
                continue
            await adapter.create_memory(summary, SUMMARY_TABLE)
            report.summaries += 1
        runtime.queue_embedding_generation(summary, "low")  # the worker skips it when already embedded
        done += [m.id for m in chunk.messages]
    return done


async def _summarise(runtime: AgentRuntime, chunk: _Chunk, names: Mapping[UUID, str]) -> Memory | None:
    messages = chunk.messages
    start, end = messages[0].created_at, messages[-1].created_at
    lines = [
        f"[{_when(m.created_at)}] {names.get(m.entity_id, 'User')}: {m.text[:MAX_MESSAGE_CHARS]}"
        for m in messages
        if m.text
    ]
    prompt = compose_prompt(
        runtime.character.templates.get("summaryTemplate") or SUMMARY_TEMPLATE,
        {
            "agentName": runtime.character.name,
            "count": len(messages),
            "start": _when(start),
            "end": _when(end),
            "messages": "\n".join(lines) or "(no text)",
        },
    )
    try:
        raw = await runtime.use_model(ModelType.TEXT_SMALL, {"prompt": prompt})
    except Exception as exc:
        logger.warning("summary of %d messages of room %s failed: %s; they are kept", len(messages), chunk.room_id, exc)
        return None
    raw = raw if isinstance(raw, str) else ""
    text = " ".join((parse_tag(raw, "summary") or parse_tag(raw, "text") or raw).split())[:MAX_SUMMARY_CHARS]
    if not text or "<" in text[:1]:
        logger.warning("summary of room %s is empty or not text (%.100r); the messages are kept", chunk.room_id, raw)
        return None
    header = f"Summary of {len(messages)} messages from {_when(start)} to {_when(end)} UTC: "
    return Memory(
        id=chunk.summary_id,
        agent_id=runtime.agent_id,
        room_id=chunk.room_id,
        world_id=messages[0].world_id,
        entity_id=runtime.agent_id,
        content=Content(text=header + text, source="compression"),
        # created_at is now (not the range's end): the lost-embedding sweep looks at recent memories only.
        metadata=MemoryMetadata.model_validate(
            {
                "type": "document",
                "source": "compression",
                "scope": "room",
                "timestamp": end,
                "startMs": start,
                "endMs": end,
                "messageCount": len(messages),
                "firstMessageId": str(messages[0].id),
                "lastMessageId": str(messages[-1].id),
            }
        ),
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


# -- fact consolidation --------------------------------------------------------------------------


async def consolidate_facts(
    runtime: AgentRuntime, options: Mapping[str, Any] | None = None, task: Task | None = None
) -> RetentionReport:
    """FACT_CONSOLIDATION: keep each room's best ``FACTS_MAX_PER_ROOM`` facts among rooms with new facts.

    Args:
        runtime: The agent's runtime.
        options: The task's metadata (``factCursor``, ``factCap`` from the previous run).
        task: The task; its metadata records where this run stopped (without a task, every
            run starts from the beginning).

    Returns:
        What the run did (``scanned`` counts rooms looked at).

    Raises:
        ConfigurationError: invalid settings.
    """
    settings = RetentionSettings.from_runtime(runtime)
    report = RetentionReport(task=FACT_CONSOLIDATION_TASK)
    options = options or {}
    started = now_ms()
    cap = settings.facts_max_per_room
    cursor = options.get("factCursor")
    since = cursor if isinstance(cursor, int) and not isinstance(cursor, bool) and options.get("factCap") == cap else 0
    rooms = await runtime.adapter.get_fact_rooms_since(runtime.agent_id, since, limit=ROOMS_PER_RUN)
    budget = settings.max_rows
    reached = since
    for room_id, newest in rooms:
        deleted = await runtime.adapter.delete_excess_facts(
            runtime.agent_id, room_id, keep=cap, half_life_ms=settings.fact_half_life_days * _DAY_MS, limit=budget
        )
        report.scanned += 1
        report.deleted += deleted
        budget -= deleted
        if budget == 0:  # this room may have more to delete: the next run starts with it
            report.more = True
            break
        reached = max(reached, min(newest, started - FACT_CURSOR_SLACK_MS))
    else:
        report.more = len(rooms) == ROOMS_PER_RUN
    if task is not None:
        await runtime.update_task(task.id, {"metadata": {"factCursor": reached, "factCap": cap}})
    return _emit(runtime, report)


# -- orphans -------------------------------------------------------------------------------------


async def remove_orphans(
    runtime: AgentRuntime, options: Mapping[str, Any] | None = None, task: Task | None = None
) -> RetentionReport:
    """ORPHAN_CLEANUP: delete facts about or naming entities that are gone, one bounded window per run.

    Args:
        runtime: The agent's runtime.
        options: The task's metadata (``orphanCursor`` from the previous run).
        task: The task; its metadata records where this run stopped.

    Returns:
        What the run did (``scanned`` counts facts looked at).

    Raises:
        ConfigurationError: invalid settings.
    """
    settings = RetentionSettings.from_runtime(runtime)
    report = RetentionReport(task=ORPHAN_CLEANUP_TASK)
    cursor = (options or {}).get("orphanCursor")
    try:
        sweep = await runtime.adapter.delete_orphan_facts(
            runtime.agent_id, cursor=cursor if isinstance(cursor, str) else None, scan_limit=settings.max_rows
        )
    except ValueError:  # a cursor this code did not write: start over
        logger.warning("ORPHAN_CLEANUP of agent %s: invalid cursor %.60r; starting over", runtime.agent_id, cursor)
        sweep = await runtime.adapter.delete_orphan_facts(runtime.agent_id, scan_limit=settings.max_rows)
    report.scanned, report.deleted, report.more = sweep.scanned, sweep.deleted, sweep.next_cursor is not None
    if task is not None:
        await runtime.update_task(task.id, {"metadata": {"orphanCursor": sweep.next_cursor}})
    return _emit(runtime, report)


# -- reporting -----------------------------------------------------------------------------------


def _emit(runtime: AgentRuntime, report: RetentionReport) -> RetentionReport:
    logger.info(
        "%s of agent %s: scanned=%d deleted=%d summaries=%d summary_failures=%d more=%s%s",
        report.task,
        runtime.agent_id,
        report.scanned,
        report.deleted,
        report.summaries,
        report.summary_failures,
        report.more,
        " (disabled: MESSAGE_RETENTION_DAYS unset)" if report.disabled else "",
    )
    if is_metrics_disabled():
        return report
    try:
        metrics = EphemeralMetrics(namespace=metrics_namespace())
        metrics.add_dimension(name="Task", value=report.task)
        for name, value in (
            ("RowsScanned", report.scanned),
            ("RowsDeleted", report.deleted),
            ("SummariesWritten", report.summaries),
            ("SummaryFailures", report.summary_failures),
            ("MoreWork", int(report.more)),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.add_metadata(key="agentId", value=str(runtime.agent_id))
        metrics.flush_metrics()
    except Exception:
        logger.warning("could not emit retention metrics", exc_info=True)
    return report


# -- tasks ---------------------------------------------------------------------------------------

message_retention_worker = TaskWorker(name=MESSAGE_RETENTION_TASK, execute=compress_messages)
fact_consolidation_worker = TaskWorker(name=FACT_CONSOLIDATION_TASK, execute=consolidate_facts)
orphan_cleanup_worker = TaskWorker(name=ORPHAN_CLEANUP_TASK, execute=remove_orphans)
RETENTION_WORKERS: tuple[TaskWorker, ...] = (message_retention_worker, fact_consolidation_worker, orphan_cleanup_worker)
_DESCRIPTIONS = {
    MESSAGE_RETENTION_TASK: "Summarise and delete messages older than MESSAGE_RETENTION_DAYS.",
    FACT_CONSOLIDATION_TASK: "Keep the best FACTS_MAX_PER_ROOM facts of each room.",
    ORPHAN_CLEANUP_TASK: "Delete facts about entities that are gone.",
}


def retention_task_id(agent_id: UUID, name: str) -> UUID:
    """The fixed id of an agent's retention task ``name`` (so creating it twice stores it once)."""
    return create_unique_uuid(agent_id, f"task:{name}")


async def ensure_retention_tasks(runtime: AgentRuntime) -> list[UUID]:
    """Create the agent's three retention tasks unless they exist (one read when they all do).

    Idempotent, also under concurrency: a task of the same name is never created twice
    (each has a fixed id, ``retention_task_id``, and ``create_task`` stores an id once).
    The first runs come one interval after creation (``repeat`` without ``immediate``).

    Returns:
        Ids of the tasks created by this call (empty when all existed; a task created by a
        concurrent call may be listed by both).

    Raises:
        ConfigurationError: invalid settings.
    """
    settings = RetentionSettings.from_runtime(runtime)
    existing = {t.name for t in await runtime.get_tasks(tags=[RETENTION_TAG])}
    created: list[UUID] = []
    for worker in RETENTION_WORKERS:
        if worker.name in existing:
            continue
        task = Task(
            id=retention_task_id(runtime.agent_id, worker.name),
            agent_id=runtime.agent_id,
            name=worker.name,
            description=_DESCRIPTIONS[worker.name],
            tags=["queue", "repeat", RETENTION_TAG],
            metadata=TaskMetadata(update_interval=int(settings.interval_s * 1000)),
        )
        try:
            created.append(await runtime.create_task(task))
        except ValueError:
            # ``create_task`` reads the id's owner back in its own snapshot, so a concurrent
            # creator of this very task makes it report "already used": the task exists.
            stored = await runtime.get_task(task.id)
            if stored is None or stored.name != worker.name:
                raise
    return created
