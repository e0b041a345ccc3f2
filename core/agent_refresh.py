"""Agents stored while a process runs are served without a restart: the orchestrator's view of ``agents``.

A Lambda container (or the local stack) registers its configured characters once, in the
init phase. Agents are also stored later (``agent agents put``, an agents API): the
``AgentRefresher`` keeps the orchestrator in step with the table, from the request path,
without a query per request:

- **Periodically**: the first request at least ``AGENT_REFRESH_S`` seconds after the last
  read re-reads the table (``get_agent_versions``: one round trip, each character shipped only
  when its row changed). New enabled agents are registered and started; a changed character is
  rebuilt as a blueprint (its own plugins and settings kept), so the ephemeral runtime build
  stays free of SQL; an agent whose row was deleted or disabled stops being served.
- **On a miss**: a request naming an agent this process does not know re-reads the table
  first, unless a read happened less than ``AGENT_REFRESH_ON_MISS_S`` seconds ago. A stream
  of unknown names therefore costs at most one query per that many seconds, not one each.

Staleness bound, per process: a new agent is served from the first request naming it at least
``AGENT_REFRESH_ON_MISS_S`` after the previous read; a changed or removed one from the first
request ``AGENT_REFRESH_S`` after the previous read. Times are wall-clock (``time.time``), so a
Lambda container thawed after minutes, or restored from a SnapStart snapshot, reads again on
its first request.

Plugins: a stored character naming a Python plugin off the deployment's allow-list
(``core.agent_admin.PluginPolicy``: ``AGENT_PLUGIN_ALLOWLIST``, by default ``MODEL_PLUGINS`` and
the plugins the configured characters name) is not served and its module is never imported,
whoever wrote the row. The API and ``agent agents put`` refuse such a character before writing it.

Measured (``tests/functions/test_agents_api.py``, the real clock, short intervals): a ``PUT``
through one container is served by another warm container within ``AGENT_REFRESH_ON_MISS_S``
plus one request's time, and a changed or disabled one within ``AGENT_REFRESH_S`` plus one
request's time; the container that took the ``PUT`` serves it on its next request (it re-reads
the table right after the write).

A read that fails (database down) is logged and changes nothing: the agents already known
are still served, and the next due request tries again.

Settings: ``AGENT_REFRESH_S`` (5 s) and ``AGENT_REFRESH_ON_MISS_S`` (1 s), read in the init
phase by ``RefreshSettings.from_env`` (``core.settings.agents``).

elizaOS loads agents when its server starts them (``ElizaOS.addAgents``/``startAgents``); a
serverless process has no operator to tell it, hence the table is polled, rate limited.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from core.agent_admin import PluginPolicy
from core.character import CharacterError, load_character_dict
from core.errors import ConfigurationError
from core.settings import Settings
from core.settings.agents import RefreshSettings

if TYPE_CHECKING:
    from core.character import Character
    from core.db.adapter import AgentVersion
    from core.orchestrator import Orchestrator

logger = logging.getLogger(__name__)


class AgentRefresher:
    """Keeps one orchestrator's agents in step with the ``agents`` table (see the module docstring).

    Args:
        orchestrator: The orchestrator to update (its adapter is read).
        settings: The intervals.
        clock: Wall-clock seconds (``time.time``; a test passes its own).
        policy: The plugins a stored character may name; by default the deployment's
            (``PluginPolicy.for_deployment``, built on first use from ``MODEL_PLUGINS`` and the
            agents registered when the refresher is made: the configured ones).

    Attributes:
        configured_ids: The agents registered before the refresher was made: the deployment's
            ``CHARACTERS`` (``core.agent_admin`` does not let their characters change).
    """

    def __init__(
        self,
        orchestrator: Orchestrator,
        settings: RefreshSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        policy: PluginPolicy | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.settings = settings or RefreshSettings()
        configured = orchestrator.get_agents()
        self.configured_ids = frozenset(b.agent_id for b in configured)
        self._configured = [b.character for b in configured]
        self._policy = policy
        self._clock = clock
        self._last_read = -math.inf
        self._versions: dict[UUID, datetime] = {}  # rows whose character this process has handled
        self._lock = asyncio.Lock()
        #: Table reads done (for tests and the health route); failures included.
        self.reads = 0

    async def before_request(self, wanted: str | None = None) -> None:
        """Read the table if it is due, or if ``wanted`` names no known agent and a miss read is allowed.

        Costs no SQL when neither holds (a clock read and a dictionary lookup). Never raises.

        Args:
            wanted: The agent id or name the request names (the API's ``{agent}``), if any.
        """
        since = self._clock() - self._last_read
        due = since >= self.settings.interval_s or since < 0  # < 0: the wall clock went back
        if not due and wanted and not self.orchestrator.has_agent(wanted):
            due = since >= self.settings.miss_interval_s
        if due:
            await self.refresh()

    async def refresh(self) -> bool:
        """Read the table now and apply what changed. Never raises: a failed read is logged.

        Returns:
            Whether the read succeeded.
        """
        async with self._lock:
            self.reads += 1
            self._last_read = self._clock()
            try:
                rows = await self.orchestrator.adapter.get_agent_versions(self._versions)
            except Exception:
                logger.warning("could not re-read the agents table; serving the agents already known", exc_info=True)
                return False
            await self._apply(rows)
            return True

    @property
    def policy(self) -> PluginPolicy:
        """The plugin allow-list stored characters are held to (built once, on first use)."""
        if self._policy is None:
            self._policy = PluginPolicy.for_deployment(Settings.from_env().model_plugins, self._configured)
        return self._policy

    async def _apply(self, rows: list[AgentVersion]) -> None:
        present = {row.id for row in rows}
        gone = [i for i in self.orchestrator.stored_agent_ids() if i not in present]
        if gone:
            await self.orchestrator.remove_agents(gone)
        self._versions = {i: v for i, v in self._versions.items() if i in present}
        for row in rows:
            if row.character is None:
                continue
            self._versions[row.id] = row.updated_at  # handled, even when invalid: not re-read until it changes
            character = _character(row)
            if character is not None and self._allowed(character):
                await self._register(character)
        self.orchestrator.mark_stored(present)

    def _allowed(self, character: Character) -> bool:
        refused = self.policy.refusals(character.plugins)
        if refused:
            logger.warning(
                "stored agent %s (%s) is not served: plugins not on the allow-list (AGENT_PLUGIN_ALLOWLIST): %s",
                character.name,
                character.id,
                ", ".join(refused),
            )
        return not refused

    async def _register(self, character: Character) -> None:
        try:
            await self.orchestrator.put_stored_agent(character)
        except ConfigurationError as exc:
            logger.warning("stored agent %s (%s) is not served: %s", character.name, character.id, exc)
        except Exception:  # a plugin module that fails to import: one agent, not the request, pays
            logger.exception("stored agent %s (%s) is not served", character.name, character.id)


def _character(row: AgentVersion) -> Character | None:
    """The row's character, with the row's id (the id every table references); ``None`` when invalid."""
    try:
        character = load_character_dict(row.character or {}, source=f"stored agent {row.name} ({row.id})")
    except CharacterError as exc:
        logger.warning("stored agent %s (%s) is not served: its character is invalid: %s", row.name, row.id, exc)
        return None
    return character.model_copy(update={"id": row.id})
