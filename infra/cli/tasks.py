"""``agent tasks list|create``: an agent's scheduled tasks, straight from the database.

``create`` checks the task as ``POST /agents/{agent}/tasks`` does, except for the worker: the
command line loads no plugins, so a queued task whose worker no deployment registers is
stored, and the scheduled runner leaves it alone with a warning.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from pydantic import ValidationError

from core.types import Task
from core.types.wire import TAG_PATTERN, TaskBody, task_json
from infra.cli.common import CliError, Io, cell, find_agent, int_range, open_container, print_table, utc

#: Columns of ``tasks list`` (JSON key, heading).
_COLUMNS = (
    ("id", "ID"),
    ("name", "NAME"),
    ("status", "STATUS"),
    ("attempts", "ATTEMPTS"),
    ("nextRunAt", "NEXT RUN (UTC)"),
    ("tags", "TAGS"),
    ("lastError", "LAST ERROR"),
)


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tasks list`` and ``tasks create``."""
    parser = groups.add_parser(
        "tasks", help="an agent's scheduled tasks", description="An agent's scheduled tasks: list, create."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        help="tasks of an agent with their state",
        description="Tasks of an agent with their scheduler state, soonest first.",
    )
    listing.add_argument("--agent", required=True, help="agent id or name (any case)")
    listing.add_argument("--tags", help="only tasks having all these tags (comma-separated)")
    listing.add_argument("--limit", type=int_range(1, 1000), default=100, help="most tasks (1-1000, default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=list_tasks)

    create = commands.add_parser(
        "create",
        help="create a task for an agent",
        description="Create a task for an agent; prints the stored task as JSON.",
    )
    create.add_argument("--agent", required=True, help="agent id or name (any case)")
    create.add_argument("--name", required=True, help="task name: the TaskWorker that runs it")
    create.add_argument("--description")
    create.add_argument("--tags", default="queue", help="comma-separated (default: queue)")
    create.add_argument("--interval-ms", type=int, help="metadata.updateInterval of a repeat task (ms)")
    create.add_argument("--metadata", help="metadata as a JSON object")
    create.add_argument("--room-id")
    create.add_argument("--world-id")
    create.add_argument("--entity-id")
    create.add_argument("--next-run-at", type=int, help="first run, ms since the epoch")
    create.set_defaults(handler=create_task)


def list_tasks(args: argparse.Namespace, io: Io) -> int:
    """``tasks list``: a table, or JSON lines with ``--json``."""
    tags = _tags(args.tags) if args.tags else None
    bad = [tag for tag in tags or [] if not re.match(TAG_PATTERN, tag)]
    if bad:
        raise CliError(f"--tags: not a tag: {bad[0]!r} (letters, digits and _.:- only, at most 64)", 2)
    with open_container() as container:

        async def fetch() -> list[Task]:
            agent = await find_agent(container.adapter, args.agent)
            return await container.adapter.get_tasks(agent.id, tags=tags, limit=args.limit)

        try:
            tasks = [task_json(t) for t in container.run(fetch())]
        except ValueError as exc:  # a tag the adapter refuses
            raise CliError(str(exc), 2) from None
    if args.json:
        for task in tasks:
            print(json.dumps(task), file=io.out)
        return 0
    rows = [[_cell(key, task.get(key)) for key, _ in _COLUMNS] for task in tasks]
    print_table([heading for _, heading in _COLUMNS], rows, io.out)
    return 0


def create_task(args: argparse.Namespace, io: Io) -> int:
    """``tasks create``: validated before any database work; prints the stored task."""
    body = _task_body(args)
    with open_container() as container:

        async def create() -> dict[str, Any]:
            agent = await find_agent(container.adapter, args.agent)
            task = Task(agent_id=agent.id, **body.model_dump(exclude_unset=True))
            await container.adapter.create_task(task)
            return task_json(await container.adapter.get_task(agent.id, task.id) or task)

        print(json.dumps(container.run(create())), file=io.out)
    return 0


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _task_body(args: argparse.Namespace) -> TaskBody:
    try:
        metadata: dict[str, Any] = json.loads(args.metadata) if args.metadata else {}
    except json.JSONDecodeError as exc:
        raise CliError(f"--metadata is not JSON: {exc}", 2) from None
    if not isinstance(metadata, dict):
        raise CliError("--metadata must be a JSON object", 2)
    if args.interval_ms is not None:
        metadata["updateInterval"] = args.interval_ms
    fields = {
        "name": args.name,
        "description": args.description,
        "roomId": args.room_id,
        "worldId": args.world_id,
        "entityId": args.entity_id,
        "nextRunAt": args.next_run_at,
        "tags": _tags(args.tags),
        "metadata": metadata,
    }
    try:
        return TaskBody.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'task'}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid task: {problems}", 2) from None


def _cell(key: str, value: Any) -> str:
    if key == "nextRunAt":
        return utc(value)
    return cell(value)
