"""What the command groups share: the error type, the streams, the database, agents, tables.

A command handler is ``handler(args, io) -> int`` (the exit status). It raises
:class:`CliError` for a problem to report in one line; ``main`` prints it and exits with its
status. Handlers that need the database open it with :func:`open_container`, which turns an
unreachable or unmigrated database into such an error naming the database's host (never its
password).
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeVar
from uuid import UUID

from core.db.adapter import AgentRecord, DatabaseAdapter
from core.errors import DatabaseError

if TYPE_CHECKING:  # importing the container pulls in the database stack: only handlers need it
    from core.deployment.container import Container

#: What boto3 needs to call the local stack's moto server when no AWS account is configured.
LOCAL_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: Seconds the reachability check waits for the database before giving up.
CONNECT_TIMEOUT_S = 5
#: SQLSTATE of a missing table: the database is not (fully) migrated.
_UNDEFINED_TABLE = "42P01"
#: True once the core migration has run (pgvector installed, the agents table created).
_SCHEMA_CHECK = "SELECT to_regtype('vector') IS NOT NULL AND to_regclass('agents') IS NOT NULL"

T = TypeVar("T")


class CliError(Exception):
    """A problem to report in one line, with the exit status it calls for.

    Args:
        message: What went wrong, for the operator (no secrets).
        status: 1 for a problem with the world (unknown agent, database), 2 for bad arguments.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Io:
    """The streams a command reads and writes.

    Attributes:
        out: Results (stdout).
        err: Problems and progress (stderr).
        stdin: Input (``chat`` reads the user's lines from it).
    """

    out: TextIO
    err: TextIO
    stdin: TextIO


# -- argument types (argparse turns their ValueError/ArgumentTypeError into exit status 2) ---


def int_range(low: int, high: int) -> Any:
    """An argparse ``type`` accepting integers from ``low`` to ``high`` inclusive."""
    return _number_range(int, "an integer", low, high)


def float_range(low: float, high: float) -> Any:
    """An argparse ``type`` accepting numbers from ``low`` to ``high`` inclusive."""
    return _number_range(float, "a number", low, high)


def _number_range(kind: type, name: str, low: float, high: float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {name}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def uuid_arg(text: str) -> UUID:
    """An argparse ``type`` for a UUID."""
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


# -- the database -----------------------------------------------------------------------


def database_url() -> str:
    """``DATABASE_URL``, else the running local stack's database, whose queues it also exports.

    The local stack is found from any directory through its data directory (``LOCAL_DATA_DIR``,
    default the project's ``.data``: ``infra.local.state``). Using it sets ``DATABASE_URL``,
    ``AWS_ENDPOINT_URL_SQS``, ``EMBEDDINGS_{HIGH,NORMAL,LOW}_QUEUE_URL`` and (unless set)
    ``SERVER_SECRET`` in this process, so the container opened next queues embeddings on the
    stack's SQS and seals secrets with its key, as the stack's own functions do. Nothing is ever
    started: a second Postgres on the stack's data would corrupt it.

    Raises:
        CliError: no ``DATABASE_URL`` and no local stack running (or one starting or stopping).
    """
    import os

    from infra.local.dev_tokens import use_local_server_secret
    from infra.local.state import StackBusy, data_dir, running_stack

    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    try:
        stack = running_stack()
    except StackBusy as exc:
        raise CliError(str(exc)) from None
    if stack is None:
        raise CliError(
            f"no local stack is running on {data_dir()}: start one with `make run` (or `agent run`),"
            " or set DATABASE_URL"
        )
    for key, value in LOCAL_AWS_ENVIRONMENT.items():  # moto accepts any credentials; boto3 needs some
        os.environ.setdefault(key, value)
    os.environ.update(stack.environment())
    use_local_server_secret(data_dir())  # the stack's SERVER_SECRET: DM room ids and sealed secrets match its own
    return stack.database_url


def describe_database(url: str) -> str:
    """``dbname on host:port`` for messages: never the user's password (nor the URL itself)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:  # a malformed URL: check_reachable says so
        return "database of DATABASE_URL"
    host = str(params.get("host") or "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    name = params.get("dbname") or params.get("user") or "postgres"
    return f"database {name!r} on {host}{port}"


def check_reachable(url: str, *, migrated: bool = True) -> None:
    """Connect once, so an unreachable or unmigrated database fails fast and says why.

    The pool would retry until its timeout and then report only that it timed out.

    Args:
        url: The database.
        migrated: Also require the schema (``agent migrate`` is what creates it).

    Raises:
        CliError: the database cannot be reached, refused the login, does not exist, or
            (``migrated``) has no schema.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = str(conninfo_to_dict(url).get("password") or "")
    except psycopg.Error:
        raise CliError("DATABASE_URL is not a valid connection string") from None  # libpq echoes it: say no more
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            schema_ok = not migrated or bool(conn.execute(_SCHEMA_CHECK).fetchone()[0])  # type: ignore[index]
    except psycopg.Error as exc:
        reason = _one_line(str(exc))
        if password:
            reason = reason.replace(password, "***")
        raise CliError(f"cannot connect to the {describe_database(url)}: {reason}") from None
    if not schema_ok:
        raise CliError(f"the {describe_database(url)} is not migrated: run `agent migrate`")


@contextlib.contextmanager
def open_container(*, models: bool = False) -> Iterator[Container]:
    """A container on the CLI's database, as a Lambda process has one; closed on leaving.

    Args:
        models: Resolve ``MODEL_PLUGINS`` (only commands that call a model need them).

    Yields:
        The container; run coroutines with ``container.run(...)``.

    Raises:
        CliError: no database (no ``DATABASE_URL``, no local stack running), or it is unreachable,
            unmigrated, or failed (named, without secrets).
        ConfigurationError: a setting is invalid (the message names the variable).
    """
    from core.blueprint import resolve_plugin
    from core.deployment.container import Container
    from core.settings import Settings

    url = database_url()  # first: the running stack's queues become settings too
    settings = Settings.from_env()
    check_reachable(url)
    update: dict[str, Any] = {"database_url": url}
    if models:  # resolved before the container opens its pool: a bad plugin must not leave it open
        for path in settings.model_plugins:
            resolve_plugin(path)
    else:
        update["model_plugins"] = []
    container = Container(settings.model_copy(update=update))
    try:
        yield container
    except DatabaseError as exc:
        if exc.sqlstate == _UNDEFINED_TABLE:
            raise CliError(f"the {describe_database(url)} is not migrated: run `agent migrate`") from None
        raise CliError(f"{_one_line(str(exc))} ({describe_database(url)})") from None
    finally:
        container.close()


# -- agents -----------------------------------------------------------------------------


async def find_agent(adapter: DatabaseAdapter, ref: str) -> AgentRecord:
    """An agent by id, or by name case-insensitively (enabled or not).

    Raises:
        CliError: no such agent.
    """
    try:
        found = await adapter.get_agent(UUID(ref))
    except ValueError:
        wanted = ref.strip().lower()
        found = next((a for a in await adapter.get_agents(include_disabled=True) if a.name.lower() == wanted), None)
    if found is None:
        raise CliError(f"no agent {ref!r} (see `agent agents list`)")
    return found


def public_character(character: dict[str, Any]) -> dict[str, Any]:
    """A stored character document without its secrets (``secrets``, legacy ``settings.secrets``)."""
    public = {k: v for k, v in character.items() if k != "secrets"}
    settings = public.get("settings")
    if isinstance(settings, dict) and "secrets" in settings:
        public["settings"] = {k: v for k, v in settings.items() if k != "secrets"}
    return public


# -- output -----------------------------------------------------------------------------


def print_table(headings: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Left-aligned columns separated by two spaces, headings first."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headings)]
    for row in [list(headings), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def cell(value: Any, *, limit: int = 60) -> str:
    """A value as one table cell: ``-`` for nothing, one line, at most ``limit`` characters."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list):
        value = ",".join(map(str, value))
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def utc(ms: int | None) -> str:
    """Milliseconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` (UTC); ``-`` for none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", "; ", text.strip())


def interruptible(container: Container, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the container's loop; on Ctrl-C cancel it and let it unwind before re-raising.

    Unwinding returns its pooled connection, so closing the container afterwards does not wait.
    """
    task = container.loop.create_task(coro)
    try:
        return container.loop.run_until_complete(task)
    except KeyboardInterrupt:
        if task.done():  # Ctrl-C reached the task itself: it has unwound already
            task.cancelled() or task.exception()  # retrieved: no "never retrieved" warning
        else:  # Ctrl-C reached the loop: let the task unwind (asyncio would never stop for a finished one)
            task.cancel()
            with contextlib.suppress(BaseException):
                container.loop.run_until_complete(task)
        raise
