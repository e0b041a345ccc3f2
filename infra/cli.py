"""Command line for operators: an agent's tasks, straight from the database.

    python -m infra.cli tasks list --agent eliza [--tags queue,repeat] [--limit 100] [--json]
    python -m infra.cli tasks create --agent eliza --name PING [--tags queue,repeat] [--interval-ms 60000]
        [--description TEXT] [--metadata JSON] [--room-id UUID] [--world-id UUID] [--entity-id UUID]
        [--next-run-at MS]

``--agent`` is the agent's id or name (any case). The database is ``DATABASE_URL``, else the
embedded Postgres of the local stack (started if needed, as ``make migrate`` does; it must
be migrated). ``create`` checks the task as ``POST /agents/{agent}/tasks`` does, except for
the worker: the command line loads no plugins, so a queued task whose worker no deployment
registers is stored, and the scheduled runner leaves it alone with a warning.

Exit status: 0 done, 1 unknown agent or database problem, 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from uuid import UUID

from pydantic import ValidationError

from core.db.adapter import AgentRecord, DatabaseAdapter
from core.errors import ConfigurationError, DatabaseError
from core.settings import Settings
from core.types import Task
from functions.api_models import TaskBody, task_json
from functions.container import Container

#: Columns of ``tasks list`` (JSON key, heading).
_COLUMNS = (("id", "ID"), ("name", "NAME"), ("status", "STATUS"), ("attempts", "ATTEMPTS"),
            ("nextRunAt", "NEXT RUN (UTC)"), ("tags", "TAGS"), ("lastError", "LAST ERROR"))


class CliError(Exception):
    """A problem to report in one line, with the exit status it calls for."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.cli", description=__doc__.split("\n")[0])
    groups = parser.add_subparsers(dest="group", required=True)
    tasks = groups.add_parser("tasks", help="an agent's scheduled tasks").add_subparsers(dest="command", required=True)

    listing = tasks.add_parser("list", help="tasks of an agent with their state")
    listing.add_argument("--agent", required=True, help="agent id or name")
    listing.add_argument("--tags", help="only tasks having all these tags (comma-separated)")
    listing.add_argument("--limit", type=int, default=100, help="most tasks (1-1000, default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    create = tasks.add_parser("create", help="create a task for an agent")
    create.add_argument("--agent", required=True, help="agent id or name")
    create.add_argument("--name", required=True, help="task name: the TaskWorker that runs it")
    create.add_argument("--description")
    create.add_argument("--tags", default="queue", help="comma-separated (default: queue)")
    create.add_argument("--interval-ms", type=int, help="metadata.updateInterval of a repeat task (ms)")
    create.add_argument("--metadata", help="metadata as a JSON object")
    create.add_argument("--room-id")
    create.add_argument("--world-id")
    create.add_argument("--entity-id")
    create.add_argument("--next-run-at", type=int, help="first run, ms since the epoch")
    return parser


def _database_url() -> str:
    from infra.local.stack import database_url

    return database_url()[0]


def _find_agent(agents: Sequence[AgentRecord], ref: str) -> AgentRecord:
    try:
        wanted = UUID(ref)
        found = next((a for a in agents if a.id == wanted), None)
    except ValueError:
        found = next((a for a in agents if a.name.lower() == ref.lower()), None)
    if found is None:
        raise CliError(f"no agent {ref!r}", 1)
    return found


def _task_body(args: argparse.Namespace) -> TaskBody:
    try:
        metadata: dict[str, Any] = json.loads(args.metadata) if args.metadata else {}
    except json.JSONDecodeError as exc:
        raise CliError(f"--metadata is not JSON: {exc}", 2) from None
    if not isinstance(metadata, dict):
        raise CliError("--metadata must be a JSON object", 2)
    if args.interval_ms is not None:
        metadata["updateInterval"] = args.interval_ms
    fields = {"name": args.name, "description": args.description, "roomId": args.room_id,
              "worldId": args.world_id, "entityId": args.entity_id, "nextRunAt": args.next_run_at,
              "tags": [t.strip() for t in args.tags.split(",") if t.strip()], "metadata": metadata}
    try:
        return TaskBody.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'task'}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid task: {problems}", 2) from None


async def _run(args: argparse.Namespace, adapter: DatabaseAdapter, out: TextIO) -> None:
    agent = _find_agent(await adapter.get_agents(include_disabled=True), args.agent)
    if args.command == "list":
        tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
        try:
            tasks = await adapter.get_tasks(agent.id, tags=tags, limit=args.limit)
        except ValueError as exc:
            raise CliError(str(exc), 2) from None
        _print_tasks([task_json(t) for t in tasks], out, as_json=args.json)
    else:
        body = _task_body(args)
        task = Task(agent_id=agent.id, **body.model_dump(exclude_unset=True))
        await adapter.create_task(task)
        stored = await adapter.get_task(agent.id, task.id)
        print(json.dumps(task_json(stored or task)), file=out)


def _print_tasks(tasks: list[dict[str, Any]], out: TextIO, *, as_json: bool) -> None:
    if as_json:
        for task in tasks:
            print(json.dumps(task), file=out)
        return
    rows = [[_cell(key, task.get(key)) for key, _ in _COLUMNS] for task in tasks]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (_, h) in enumerate(_COLUMNS)]
    for row in [[h for _, h in _COLUMNS], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "nextRunAt":
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if key == "tags":
        return ",".join(value) or "-"
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:59] + "\u2026"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command.

    Args:
        argv: Arguments (``sys.argv[1:]`` by default).
        out: Where results go (stdout by default).
        err: Where problems go (stderr by default).

    Returns:
        The exit status: 0 done, 1 unknown agent or database problem, 2 invalid arguments.
    """
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage
        return int(exc.code or 0)
    try:
        if args.command == "create":
            _task_body(args)  # refuse a bad task before touching any database
        # A container, as a Lambda process has: it owns the pool (and is the only closer of it).
        container = Container(Settings.from_env().model_copy(update={"database_url": _database_url()}))
        try:
            container.run(_run(args, container.adapter, out))
        finally:
            container.close()
    except CliError as exc:
        print(f"error: {exc}", file=err)
        return exc.status
    except (ConfigurationError, DatabaseError) as exc:  # a bad setting, an unmigrated or unreachable database
        print(f"error: {exc}", file=err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
