"""Agents: the rows every other table hangs off (``ON DELETE CASCADE``)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from core.db.adapter import AgentRecord, AgentVersion
from core.db.postgres.base import PostgresBase
from core.db.retry import idempotent
from core.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: Keys ``update_agent`` accepts; anything else is a caller's mistake, not something to ignore.
AGENT_UPDATABLE = frozenset({"name", "character", "enabled"})
#: Character keys that are deep-merged by ``update_agent`` (elizaOS ``mergeAgentSettings``).
_DEEP_MERGED = ("settings", "secrets")
_AGENT_COLUMNS = "id, name, character, enabled"


def _agent_from_row(row: dict[str, Any]) -> AgentRecord:
    return AgentRecord(id=row["id"], name=row["name"], character=row["character"], enabled=row["enabled"])


def _deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in: nested objects merge, ``None`` deletes a key."""
    merged = dict(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_character(stored: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The character document after a partial update (elizaOS ``updateAgent``).

    Top-level keys are replaced; ``settings`` and ``secrets`` are deep-merged, where a
    ``None`` value removes the key (how elizaOS deletes one setting or secret).
    """
    merged = dict(stored)
    for key, value in changes.items():
        if key in _DEEP_MERGED and isinstance(value, Mapping) and isinstance(stored.get(key), dict):
            merged[key] = _deep_merge(stored[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_changes(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - AGENT_UPDATABLE
    if unknown:
        raise ValueError(f"cannot update agent field(s) {sorted(unknown)}; allowed: {sorted(AGENT_UPDATABLE)}")
    if "name" in changes and (not isinstance(changes["name"], str) or not changes["name"].strip()):
        raise ValueError("agent name must be a non-empty string")
    if "enabled" in changes and not isinstance(changes["enabled"], bool):
        raise ValueError("agent enabled must be a bool")
    character = changes.get("character", {})
    if not isinstance(character, Mapping):
        raise ValueError("agent character changes must be a JSON object")
    if "name" in changes and "name" in character and character["name"] != changes["name"]:
        raise ValueError("name and character.name disagree")


class AgentsMixin(PostgresBase):
    """Agents (elizaOS ``IDatabaseAdapter`` agent methods); character secrets are sealed by
    ``secret_box`` on every write and opened on every read, so callers see plain text."""

    def _sealed(self, agent_id: UUID, character: Mapping[str, Any]) -> Mapping[str, Any]:
        return character if self.secret_box is None else self.secret_box.seal_character(agent_id, character)

    def _open(self, agent_id: UUID, character: Mapping[str, Any]) -> dict[str, Any]:
        if self.secret_box is None:
            return dict(character)
        try:
            return self.secret_box.open_character(agent_id, character)
        except ConfigurationError as exc:
            # One agent sealed under another key must not stop every other agent from loading
            # (the refresher and the CLI read them all): it is served without its secrets, loudly.
            logger.error("%s; agent %s is loaded without its secrets", exc, agent_id)
            return {**character, "secrets": {}}

    def _opened(self, record: AgentRecord) -> AgentRecord:
        return record._replace(character=self._open(record.id, record.character))

    async def upsert_agents(self, agents: Sequence[AgentRecord]) -> None:
        """Create or update agents by id, in one round trip."""
        await self._execute_many(
            "INSERT INTO agents (id, name, character) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, character = excluded.character,"
            " updated_at = now() WHERE agents.character IS DISTINCT FROM excluded.character",
            [(a.id, a.name, Jsonb(self._sealed(a.id, a.character))) for a in agents],
        )

    async def create_agent(self, agent: AgentRecord) -> bool:
        """Store a new agent (elizaOS ``createAgent``).

        Args:
            agent: The agent; its ``name`` must be unique, case-insensitively.

        Returns:
            True when created; False when an agent with this id or name already exists
            (the stored one is left untouched).
        """
        return (
            await self._execute(
                "INSERT INTO agents (id, name, character, enabled) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (agent.id, agent.name, Jsonb(self._sealed(agent.id, agent.character)), agent.enabled),
            )
            == 1
        )

    async def get_agent(self, agent_id: UUID) -> AgentRecord | None:
        """The agent, enabled or not, or ``None`` when there is no such agent."""
        row = await self._fetch_one(f"SELECT {_AGENT_COLUMNS} FROM agents WHERE id = %s", (agent_id,))
        return None if row is None else self._opened(_agent_from_row(row))

    async def get_agents(self, *, include_disabled: bool = False) -> list[AgentRecord]:
        """Agents by name (elizaOS ``getAgents``).

        Args:
            include_disabled: Also return agents whose ``enabled`` is false (elizaOS
                returns every agent; the runtime only loads enabled ones, hence the default).
        """
        rows = await self._fetch_all(
            f"SELECT {_AGENT_COLUMNS} FROM agents WHERE enabled OR %s ORDER BY lower(name), id",
            (include_disabled,),
        )
        return [self._opened(_agent_from_row(r)) for r in rows]

    async def get_agent_versions(self, known: Mapping[UUID, datetime]) -> list[AgentVersion]:
        """Every enabled agent with its ``updated_at``, and its character only when it is news.

        One round trip, for ``core.agent_refresh``: a caller that re-reads the table every few
        seconds ships each character once per change, not on every read. A character is news
        when ``known`` lacks the agent or holds another ``updated_at`` for it.

        Args:
            known: ``updated_at`` of the versions the caller holds, by agent id.

        Returns:
            The enabled agents, by name.
        """
        ids, stamps = list(known), list(known.values())
        rows = await self._fetch_all(
            "SELECT a.id, a.name, a.updated_at,"
            " CASE WHEN k.updated_at IS DISTINCT FROM a.updated_at THEN a.character END AS character"
            " FROM agents a LEFT JOIN unnest(%s::uuid[], %s::timestamptz[]) AS k(id, updated_at) ON k.id = a.id"
            " WHERE a.enabled ORDER BY lower(a.name), a.id",
            (ids, stamps),
        )
        return [
            AgentVersion(
                r["id"],
                r["name"],
                r["updated_at"],
                None if r["character"] is None else self._open(r["id"], r["character"]),
            )
            for r in rows
        ]

    @idempotent
    async def update_agent(self, agent_id: UUID, changes: Mapping[str, Any]) -> bool:
        """Apply a partial update to an agent (elizaOS ``updateAgent``).

        Reads and writes under a row lock in one transaction, so two concurrent updates of
        different settings both survive.

        Args:
            agent_id: The agent.
            changes: Any of ``name`` (str), ``enabled`` (bool) and ``character`` (a partial
                character document: top-level keys replace the stored ones; ``settings`` and
                ``secrets`` are deep-merged and a ``None`` value removes a key). The name
                column and ``character.name`` are kept equal.

        Returns:
            True when the agent exists (and was updated); False otherwise.

        Raises:
            ValueError: an unknown key, a value of the wrong type, ``name`` and
                ``character.name`` that disagree, or a name another agent already has.
        """
        _check_changes(changes)
        async with self._transaction() as conn:
            row = await (
                await conn.execute(f"SELECT {_AGENT_COLUMNS} FROM agents WHERE id = %s FOR UPDATE", (agent_id,))
            ).fetchone()
            if row is None:
                return False
            character = merge_character(row["character"], changes.get("character", {}))
            name = changes.get("name", character.get("name", row["name"]))
            if not isinstance(name, str) or not name.strip():
                raise ValueError("agent name must be a non-empty string")
            character["name"] = name
            try:
                await conn.execute(
                    "UPDATE agents SET name = %s, character = %s, enabled = %s, updated_at = now() WHERE id = %s",
                    (name, Jsonb(self._sealed(agent_id, character)), changes.get("enabled", row["enabled"]), agent_id),
                )
            except UniqueViolation as exc:
                raise ValueError(f"another agent is already named {name!r}") from exc
        return True

    async def delete_agent(self, agent_id: UUID) -> bool:
        """Delete an agent and everything it owns (elizaOS ``deleteAgent``).

        Entities, worlds, rooms, participants, memories, embeddings, components and
        relationships go with it (``ON DELETE CASCADE``, in the same statement).

        Returns:
            True when the agent existed.
        """
        return await self._execute("DELETE FROM agents WHERE id = %s", (agent_id,)) == 1
