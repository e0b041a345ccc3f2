"""The composition root: what a process builds once and keeps (a Lambda container's init phase, the CLI).

One event loop per container, kept for its life (the pool is bound to it, so no
``asyncio.run`` per invocation); one connection pool; the model plugins resolved once. The
Lambda handlers (``functions``) and the CLI (``infra.cli``) both build their process from it;
Lambda-only concerns (SnapStart hooks, the garbage collector) stay in ``functions``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from core import aws
from core.blueprint import resolve_plugin
from core.db.pool import Pool, create_pool
from core.db.postgres import PostgresAdapter
from core.deployment.plugins import built_in_plugins, configured_characters
from core.embeddings.queue import AfterResponse, EmbeddingQueue
from core.errors import ConfigurationError
from core.events import EventBus
from core.model_registry import ModelRegistry
from core.plugin import Plugin
from core.secret_box import SecretBox
from core.server_secret import ServerSecret
from core.settings import Settings
from core.settings.agents import RefreshSettings
from core.settings.identity import IdentitySettings
from core.settings.queues import EmbeddingQueueSettings
from core.types import ModelType

if TYPE_CHECKING:
    from core.agent_refresh import AgentRefresher
    from core.character import Character
    from core.orchestrator import Orchestrator

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _runtime() -> tuple[type[Orchestrator], type[AgentRefresher]]:
    """The runtime's classes, imported on first call: the one lazy import of the composition root.

    Only the functions that build an orchestrator (messages, tasks, the CLI) need the runtime;
    imported eagerly, it costs the embeddings function 11-13 ms of its init phase (Python 3.12,
    bench/cold_start.py's setup), over the 10 ms a cold-start trick must buy to stay.
    """
    from core.agent_refresh import AgentRefresher
    from core.orchestrator import Orchestrator

    return Orchestrator, AgentRefresher


class Container:
    """Per-process state, built in the Lambda init phase (or when a CLI command starts).

    ``before_snapshot`` and ``after_restore`` are what Lambda SnapStart's runtime hooks call
    (``functions.snapstart`` registers them).

    Args:
        settings: Process settings (from the environment by default).
        aws_clients: Where its AWS SDK clients come from (the process's shared session by default).
        after_response: Runs work after the invocation's response (``functions.after_response``):
            given, the embedding requests' sends leave the reply path (``core.embeddings.queue``).

    Raises:
        ConfigurationError: no database is configured (``DATABASE_URL`` or ``DATABASE_SECRET_ARN``),
            no server secret (``SERVER_SECRET`` or ``SERVER_SECRET_ARN``), or a model plugin
            cannot be resolved.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        aws_clients: aws.AwsClients | None = None,
        after_response: AfterResponse | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.aws = aws_clients or aws.PROCESS
        self.after_response = after_response
        self.identity = IdentitySettings.from_env()
        self.server_secret = self._load_server_secret()
        self.loop = asyncio.new_event_loop()
        self.pool = self._open_pool()
        self.adapter = PostgresAdapter(
            self.pool,
            embedding_dimension=self.settings.embedding_dimension,
            secret_box=SecretBox(self.server_secret.key("character_secrets")),
        )
        self.model_plugins: list[Plugin] = [resolve_plugin(p) for p in self.settings.model_plugins]

    def _load_server_secret(self) -> ServerSecret:
        client = self.aws.client("secretsmanager") if not self.identity.server_secret else None
        return ServerSecret.load(self.identity, client)

    def _open_pool(self) -> Pool:
        pool = create_pool(self.settings)
        self.run(pool.open())
        return pool

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to completion on the container's loop."""
        return self.loop.run_until_complete(coro)

    def embedding_queue(self) -> EmbeddingQueue | None:
        """An SQS link to the configured queues, or ``None`` (with a warning) when none is set."""
        if not self.settings.queue_urls:
            logger.warning("no EMBEDDINGS_*_QUEUE_URL set: embeddings stay pending")
            return None
        budget_s = EmbeddingQueueSettings.from_env().send_budget_s  # bounds the reply path: core.embeddings.queue
        return EmbeddingQueue(
            self.aws.client("sqs", config=aws.fail_fast_config(budget_s)),
            self.settings.queue_urls,
            dimension=self.settings.embedding_dimension,
            budget_s=budget_s,
            after_response=self.after_response,
        )

    def orchestrator(self) -> Orchestrator:
        """Load the characters, register the agents (one upsert round trip), then the other agents
        stored in the table (one read), and return the orchestrator.

        Its ``refresher`` keeps the agents in step with the table afterwards (``core.agent_refresh``;
        ``AGENT_REFRESH_S``, ``AGENT_REFRESH_ON_MISS_S``) when a handler calls ``before_request``.

        Raises:
            ConfigurationError: a refresh setting is invalid, or a configured agent cannot be built.
            CharacterError: a configured character file is invalid.
        """
        orchestrator_class, refresher_class = _runtime()
        refresh = RefreshSettings.from_env(os.environ)
        orchestrator = orchestrator_class(
            self.adapter,
            embedding_queue=self.embedding_queue(),
            plugins=[*built_in_plugins(), *self.model_plugins],
            dm_room_key=self.server_secret.key("dm_room"),
        )
        self.run(orchestrator.add_agents(self.characters(), auto_start=True))
        orchestrator.refresher = refresher_class(orchestrator, refresh)
        self.run(orchestrator.refresher.refresh())
        return orchestrator

    def characters(self) -> list[Character]:
        """Characters from ``CHARACTERS``, or the project's default character (Eliza)."""
        return configured_characters(self.settings)

    def model_registry(self) -> ModelRegistry:
        """A registry of the model plugins alone (for functions that serve no agent)."""
        registry = ModelRegistry()
        for plugin in self.model_plugins:
            for registration in plugin.models:
                registry.register(plugin.name, registration)
        if not registry.has(ModelType.TEXT_EMBEDDING):
            raise ConfigurationError("no model plugin serves TEXT_EMBEDDING")
        return registry

    def events(self) -> EventBus:
        """The process's event bus, with the event handlers of the model plugins."""
        bus = EventBus()
        for plugin in self.model_plugins:
            for name, handlers in plugin.events.items():
                for handler in handlers:
                    bus.register(name, handler)
        return bus

    def before_snapshot(self) -> None:
        """SnapStart hook (``functions.snapstart``): close the pool, whose connections no restored copy could use."""
        self.run(self.pool.close())

    def after_restore(self) -> None:
        """SnapStart hook (``functions.snapstart``): reseed ``random``, open a new pool and give it to the adapter.

        The new pool connects on first use, reading the database secret again.
        """
        random.seed()  # from os.urandom: each restored copy draws its own retry jitter
        self.pool = self._open_pool()
        self.adapter.pool = self.pool  # the adapter is the pool's only user besides GET /health

    def close(self) -> None:
        """Close the pool and the loop (process shutdown only)."""
        self.run(self.pool.close())
        self.loop.close()
