"""Storing facts: de-duplicated upserts and their embeddings (the ``Fact`` record is ``core.types.fact``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.embeddings.request import Priority
from core.types.fact import Fact, FactWrite

if TYPE_CHECKING:
    from core.runtime import AgentRuntime


async def store_facts(runtime: AgentRuntime, facts: list[Fact], *, priority: Priority = "low") -> list[FactWrite]:
    """Store facts with de-duplication and queue embeddings for the new ones.

    Args:
        runtime: The agent's runtime (its adapter and embedding queue).
        facts: Facts of ``runtime``'s agent.
        priority: Embedding queue priority of new facts (``"low"``: facts are not on a reply path).

    Returns:
        One ``FactWrite`` per fact, in order.

    Raises:
        ValueError: a fact belongs to another agent.
        NotFoundError: a fact's room is unknown to the agent.
    """
    for fact in facts:
        if fact.agent_id != runtime.agent_id:
            raise ValueError(f"fact {fact.id} belongs to agent {fact.agent_id}, not {runtime.agent_id}")
    writes = await runtime.adapter.upsert_facts(facts)
    for write in writes:
        if write.created:  # a confirmed fact keeps its text, so its vector is still right
            runtime.queue_embedding_generation(write.fact.to_memory(), priority)
    return writes
