"""The local stack: the same handlers as in AWS, on this machine, with no cloud account.

``python -m infra.local.stack serve`` (``make run``): embedded Postgres under ``.data/``,
migrations, moto's SQS server with the three embedding queues, the HTTP gateway on
127.0.0.1:$PORT (3000) for ``functions.messages``, the SQS poller for
``functions.embeddings`` and the scheduler for ``functions.tasks`` (a scheduled event every
``TASKS_INTERVAL_S``, 60 s; the context's timeout is ``TASKS_FUNCTION_TIMEOUT_S``, 120 s, as
in ``template.yaml``). ``migrate`` (``make migrate``) applies migrations only.

``DATABASE_URL`` switches to an existing database; ``MODEL_PLUGINS`` to other models.

The handlers log as in Lambda: JSON lines on stdout, ``core``'s too (``CORE_LOGS_JSON``), and
the messages function serves its OpenAPI document at ``/openapi.json`` (``SERVE_OPENAPI``;
deployed, that route is off). Both can be turned off by setting them to ``false``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("infra.local.stack")

DATABASE_NAME = "agents"
LOCAL_MODELS = "core.model_providers.local"


def _data_dir() -> Path:
    return Path(os.environ.get("LOCAL_DATA_DIR", ".data")).resolve()


def database_url() -> tuple[str, Any]:
    """``DATABASE_URL``, or the embedded Postgres (started if needed) and its ``agents`` database.

    Returns:
        The URL and the embedded server (``None`` when ``DATABASE_URL`` is set).
    """
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    from infra.local.postgres import start_embedded_postgres

    server = start_embedded_postgres(_data_dir() / "pg")
    server.create_database(DATABASE_NAME)
    return server.database_url(DATABASE_NAME), server


def migrate_command() -> None:
    from core.db.migrations import migrate
    from core.settings import Settings
    from functions.deployment import deployment_plugins

    url, _ = database_url()
    applied = migrate(url, plugins=deployment_plugins(Settings.from_env()))
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}", file=sys.stderr)


@dataclass
class LocalStack:
    """The running pieces, for ``stop()``."""

    gateway: Any
    poller: Any
    moto: Any
    postgres: Any
    containers: list[Any]
    scheduler: Any = None

    def stop(self) -> None:
        """Stop serving first, then close the handlers' pools on their loops (process shutdown)."""
        self.gateway.stop()
        self.poller.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        for container in self.containers:
            container.close()
        self.moto.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start(port: int, *, host: str = "127.0.0.1") -> LocalStack:
    """Start everything and return once the gateway accepts requests.

    Sets the environment the handlers read in their init phase (``DATABASE_URL``, queue
    URLs, the SQS endpoint), then imports them, as Lambda would on a cold start.
    """
    import boto3

    from core.db.migrations import migrate
    from infra.local.gateway import LocalGateway
    from infra.local.poller import SqsPoller
    from infra.local.scheduler import LocalScheduler
    from infra.local.sqs import create_embedding_queues, start_moto_server

    for key, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_METRICS_DISABLED": "true",
                       "SERVE_OPENAPI": "true", "CORE_LOGS_JSON": "true"}.items():
        os.environ.setdefault(key, value)
    from core.settings import Settings
    from functions.deployment import deployment_plugins

    url, postgres = database_url()
    migrate(url, plugins=deployment_plugins(Settings.from_env()))
    moto = start_moto_server(port=int(os.environ.get("MOTO_PORT", "0")))
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url)
    queues = create_embedding_queues(sqs, visibility_timeout_s=30)
    os.environ.update({
        "DATABASE_URL": url, "AWS_ENDPOINT_URL_SQS": moto.endpoint_url,
        **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in queues.items()},
    })
    os.environ.setdefault("DB_POOL_MAX_SIZE", "2")
    if os.environ.get("MODEL_PLUGINS", LOCAL_MODELS) == LOCAL_MODELS:
        from core.model_providers.local import preload

        print("loading the local models (SmolLM2-135M, all-MiniLM-L6-v2)...", file=sys.stderr)
        preload()
    from functions import embeddings, messages, tasks  # init phase of the three functions

    gateway = LocalGateway(messages.handler, host=host, port=port, function_name="messages").start()
    poller = SqsPoller(sqs, queues, embeddings.handler, function_name="embeddings")
    poller.start()
    scheduler = LocalScheduler(tasks.handler, interval_s=float(os.environ.get("TASKS_INTERVAL_S", "60")),
                               timeout_s=float(os.environ.get("TASKS_FUNCTION_TIMEOUT_S", "120"))).start()
    return LocalStack(gateway=gateway, poller=poller, moto=moto, postgres=postgres,
                      containers=[messages.container, embeddings.container, tasks.container], scheduler=scheduler)


def serve_command() -> None:
    port = int(os.environ.get("PORT", "3000"))
    started = time.perf_counter()
    stack = start(port)
    print(f"\nAgent runtime listening on {stack.gateway.url}  (ready in {time.perf_counter() - started:.1f} s)\n"
          f"  curl -X POST {stack.gateway.url}/agents/eliza/messages -d '{{\"text\":\"Hello, who are you?\"}}'\n"
          f"  OpenAPI document: {stack.gateway.url}/openapi.json\n"
          "Ctrl-C stops it.", file=sys.stderr)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    print("stopping...", file=sys.stderr)
    stack.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agent-runtime-local", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every pg_ctl call
    {"serve": serve_command, "migrate": migrate_command}[args.command]()


if __name__ == "__main__":
    main()
