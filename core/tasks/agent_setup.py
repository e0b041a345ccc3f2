"""What each agent of a deployment needs once, outside any request: its retention tasks and
its character's knowledge as documents.

Run by the scheduled tasks function on the first tick of each container (so after every
deploy), and by ``agent knowledge sync`` on demand; never on the request path. Both steps
are idempotent: a second run stores nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from core.knowledge.character import ingest_character_knowledge
from core.memory.retention import ensure_retention_tasks

if TYPE_CHECKING:
    from core.orchestrator import Orchestrator

logger = logging.getLogger(__name__)


@dataclass
class SetupReport:
    """What ``prepare_agents`` did.

    Attributes:
        agents: Agents prepared without error.
        tasks_created: Retention tasks created.
        documents_added: Knowledge documents added or replaced.
        failed: Names of the agents whose preparation failed (logged; retried next time).
        prepared: Ids of the agents prepared without error (a caller skips them next time).
    """

    agents: int = 0
    tasks_created: int = 0
    documents_added: int = 0
    failed: list[str] = field(default_factory=list)
    prepared: list[UUID] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "agents": self.agents,
            "tasksCreated": self.tasks_created,
            "documentsAdded": self.documents_added,
            "failed": self.failed,
        }


async def prepare_agents(orchestrator: Orchestrator, *, skip: Container[UUID] = ()) -> SetupReport:
    """Create missing retention tasks and sync character knowledge for every agent not in ``skip``.

    A failing agent is logged and counted; the others are still prepared. A caller that keeps
    ``report.prepared`` and passes it back as ``skip`` retries only the failed agents (and
    prepares agents registered since, such as those stored while the process runs).
    """
    report = SetupReport()
    for blueprint in orchestrator.get_agents():
        if blueprint.agent_id in skip:
            continue
        runtime = orchestrator.runtime(blueprint.agent_id)
        try:
            report.tasks_created += len(await ensure_retention_tasks(runtime))
            summary = await ingest_character_knowledge(runtime)
            report.documents_added += summary.added + summary.replaced
            report.agents += 1
            report.prepared.append(blueprint.agent_id)
        except Exception:
            logger.exception("could not prepare agent %s", blueprint.character.name)
            report.failed.append(blueprint.character.name)
        finally:
            await runtime.flush_embeddings()
    return report
