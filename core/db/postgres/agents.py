"""Agents: the rows every other table hangs off (``ON DELETE CASCADE``)."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from core.db.adapter import AgentRecord
from core.db.postgres.base import PostgresBase


class AgentsMixin(PostgresBase):
    async def upsert_agents(self, agents: Sequence[AgentRecord]) -> None:
        """Create or update agents by id, in one round trip."""
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO agents (id, name, character) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name, character = excluded.character,"
                " updated_at = now() WHERE agents.character IS DISTINCT FROM excluded.character",
                [(a.id, a.name, Jsonb(a.character)) for a in agents],
            )

    async def get_agents(self) -> list[AgentRecord]:
        """All enabled agents, by name."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT id, name, character FROM agents WHERE enabled ORDER BY name")
            ).fetchall()
        return [AgentRecord(id=r["id"], name=r["name"], character=r["character"]) for r in rows]
