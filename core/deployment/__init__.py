"""The composition root: settings, pool, adapter, model plugins, characters and the orchestrator.

- ``core.deployment.container.Container`` builds a process's long-lived parts once: the event
  loop, the pool, the adapter, the model plugins, the embedding queue and the orchestrator.
- ``core.deployment.plugins`` says what a deployment runs (``deployment_plugins``,
  ``configured_characters``) without touching the database: the migrate function needs only that,
  so nothing is imported here eagerly.

The Lambda handlers (``functions``) and the CLI (``infra.cli``) both start here, so a handler and
a CLI command see the same agents, plugins and queues.
"""
