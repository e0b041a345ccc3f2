"""Runtimes with the memory plugin on real Postgres, scripted models, moto SQS, and the real #ubuntu log."""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.blueprint import AgentBlueprint
from core.character import Character
from core.embeddings.queue import EmbeddingQueue
from core.embeddings.request import EmbeddingRequest
from core.embeddings.worker import EmbeddingWorker
from core.memory.plugin import memory_plugin
from core.model_providers.scripted import ScriptedModels
from core.runtime import AgentRuntime
from core.types import ChannelType, Content, Memory
from core.uuid import create_unique_uuid
from tests.data import IRC_LOG

FIXTURES = Path(__file__).parents[2] / "fixtures" / "memory"
_LINE = re.compile(r"^\[(\d\d):(\d\d)\] <([^>]+)> (.*)$")


@dataclass(frozen=True)
class IrcLine:
    at_ms: int
    nick: str
    text: str


@functools.cache
def _irc_log() -> tuple[IrcLine | None, ...]:
    """Every line of the log: a message, or ``None`` for ``===`` system lines.

    The log's clock has 12 hours (``[12:59]`` is followed by ``[01:00]``): times are made
    monotonic by adding 12 hours where the clock goes back. Lines of the same minute are
    spaced one second apart, in log order, so every message has its own time.
    """
    day = int(datetime(2004, 11, 15, tzinfo=UTC).timestamp() * 1000)
    parsed: list[IrcLine | None] = []
    seen_in_minute: dict[int, int] = {}
    shift = 0
    last = 0
    for raw in IRC_LOG.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _LINE.match(raw)
        if not match:
            parsed.append(None)
            continue
        hour, minute, nick, text = match.groups()
        base = day + ((int(hour) % 12) * 60 + int(minute)) * 60_000 + 12 * 3_600_000 + shift
        if base < last:
            shift += 12 * 3_600_000
            base += 12 * 3_600_000
        last = base
        offset = seen_in_minute.get(base, 0)
        seen_in_minute[base] = offset + 1
        parsed.append(IrcLine(base + offset * 1000, nick, text))
    return tuple(parsed)


def irc_lines(first: int = 1, last: int = 130) -> list[IrcLine]:
    """Messages of log lines ``first..last`` (1-based, inclusive); ``===`` system lines skipped."""
    return [line for line in _irc_log()[first - 1 : last] if line is not None]


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def drain(client: Any, url: str) -> list[dict]:
    bodies: list[dict] = []
    while got := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in got]
    return bodies


@pytest.fixture
def make_runtime(adapter, agent_id, scripted, sqs):
    """``make_runtime(settings=None, **character)``: a runtime of the test's agent with the memory plugin."""
    client, urls = sqs

    def make(settings: dict[str, Any] | None = None, **character: Any) -> AgentRuntime:
        fields = {"name": "Eliza", "bio": ["A friendly assistant who hangs out in #ubuntu."], **character}
        blueprint = AgentBlueprint.build(Character(id=agent_id, **fields), [memory_plugin, scripted.plugin()])
        return AgentRuntime(blueprint, adapter, embedding_queue=EmbeddingQueue(client, urls), settings=settings)

    return make


@dataclass
class SeededRoom:
    room_id: uuid.UUID
    people: dict[str, uuid.UUID]
    messages: list[Memory]


async def seed_room(
    runtime: AgentRuntime,
    lines: list[IrcLine],
    *,
    room_id: uuid.UUID | None = None,
    channel_type: ChannelType = ChannelType.GROUP,
) -> SeededRoom:
    """Store ``lines`` as the messages of a room whose participants are their speakers."""
    room_id = room_id or uuid.uuid4()
    people: dict[str, uuid.UUID] = {}
    for line in lines:
        if line.nick not in people:
            people[line.nick] = create_unique_uuid(runtime.agent_id, f"irc:{line.nick}")
            await runtime.ensure_connection(
                entity_id=people[line.nick],
                room_id=room_id,
                user_name=line.nick,
                source="irc",
                channel_type=channel_type,
            )
    messages = [
        Memory(
            agent_id=runtime.agent_id,
            room_id=room_id,
            entity_id=people[line.nick],
            content=Content(text=line.text, source="irc", channel_type=channel_type.value),
            created_at=line.at_ms,
        )
        for line in lines
    ]
    await runtime.adapter.create_memories(messages, "messages")
    return SeededRoom(room_id, people, messages)


async def embed_all(adapter: Any, memories: list[Memory], embed: Any) -> None:
    """Run the real embedding worker over ``memories`` with ``embed(texts) -> vectors``."""
    requests = [EmbeddingRequest(memory_id=m.id, agent_id=m.agent_id, content_hash=m.content_hash) for m in memories]
    await EmbeddingWorker(adapter, embed, "test-embedder").process(requests)


def bag_of_words(scripted: ScriptedModels):
    """The scripted model's deterministic vectors as a batched embedder."""

    async def embed(texts: list[str]) -> list[list[float]]:
        return [scripted.vector(t) for t in texts]

    return embed


async def sql(adapter: Any, query: str, params: Any = ()) -> list[dict]:
    """Raw SQL for set-up and checks only."""
    async with adapter.pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []
