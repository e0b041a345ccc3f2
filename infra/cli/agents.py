"""``agent agents list|show|put``: the agents (characters) stored in the database.

``show`` never prints secrets (``secrets``, legacy ``settings.secrets``): it says how many
there are. ``put`` validates a character file (elizaOS 1.x or 0.x, one character or a list)
with ``core.character`` and upserts it by id (the character's ``id``, else the id elizaOS
derives from its name, as the runtime does), so a later ``put`` of the same file updates it.
A running stack serves what ``put`` stored without a restart: a new agent from the first
request naming it, a changed one within ``AGENT_REFRESH_S`` (``core.agent_refresh``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.character import load_characters
from core.db.adapter import AgentRecord
from core.uuid import string_to_uuid
from infra.cli.common import CliError, Io, cell, find_agent, open_container, print_table, public_character

if TYPE_CHECKING:
    from core.db.adapter import DatabaseAdapter


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agents list``, ``agents show`` and ``agents put``."""
    parser = groups.add_parser(
        "agents",
        help="agents stored in the database",
        description="Agents (characters) stored in the database: list, show, put.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="every agent, enabled or not", description="Every agent, enabled or not, by name."
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=list_agents)

    show = commands.add_parser(
        "show",
        help="one agent and its character (without secrets)",
        description="One agent and its character document, secrets left out.",
    )
    show.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    show.add_argument("--json", action="store_true", help="the agent and its character as JSON")
    show.set_defaults(handler=show_agent)

    put = commands.add_parser(
        "put",
        help="create or update agents from a character file",
        description="Validate a character file (elizaOS 1.x or 0.x, one character or a"
        " list) and create or update its agents.",
        epilog="A running stack serves them without a restart: a new agent from the first"
        " request naming it, a changed or disabled one within AGENT_REFRESH_S seconds"
        " (default 5).",
    )
    put.add_argument("file", metavar="CHARACTER_FILE", type=Path, help="a character JSON file")
    put.set_defaults(handler=put_agents)


def list_agents(args: argparse.Namespace, io: Io) -> int:
    """``agents list``: a table, or JSON lines with ``--json``."""
    with open_container() as container:
        agents = [_summary(a) for a in container.run(container.adapter.get_agents(include_disabled=True))]
    if args.json:
        for agent in agents:
            print(json.dumps(agent), file=io.out)
        return 0
    rows = [
        [
            a["id"],
            a["name"],
            "yes" if a["enabled"] else "no",
            cell(a["username"], limit=20),
            cell(a["plugins"], limit=40),
            cell(a["bio"][:1]),
        ]
        for a in agents
    ]
    print_table(["ID", "NAME", "ENABLED", "USERNAME", "PLUGINS", "BIO"], rows, io.out)
    return 0


def show_agent(args: argparse.Namespace, io: Io) -> int:
    """``agents show``: a summary, or ``{"id", "name", "enabled", "character"}`` with ``--json``."""
    with open_container() as container:
        agent = container.run(find_agent(container.adapter, args.agent))
    character = public_character(agent.character)
    if args.json:
        document = {"id": str(agent.id), "name": agent.name, "enabled": agent.enabled, "character": character}
        print(json.dumps(document, indent=2, ensure_ascii=False), file=io.out)
        return 0
    secrets = _secret_count(agent.character)
    fields: list[tuple[str, Any]] = [
        ("id", agent.id),
        ("name", agent.name),
        ("enabled", "yes" if agent.enabled else "no"),
        ("username", character.get("username")),
        ("system", character.get("system")),
        ("plugins", character.get("plugins")),
        ("topics", character.get("topics")),
        ("adjectives", character.get("adjectives")),
        (
            "examples",
            f"{len(_as_list(character.get('messageExamples')))} conversations,"
            f" {len(_as_list(character.get('postExamples')))} posts",
        ),
        ("knowledge", f"{len(_as_list(character.get('knowledge')))} items"),
        ("settings", sorted(s) if isinstance(s := character.get("settings"), dict) else s),
        ("secrets", f"{secrets} set (not shown)" if secrets else None),
    ]
    for name, value in fields:
        print(f"{name + ':':<12}{cell(value, limit=100)}", file=io.out)
    for line in _as_list(character.get("bio")):
        print(f"{'bio:':<12}{cell(line, limit=100)}", file=io.out)
    return 0


def put_agents(args: argparse.Namespace, io: Io) -> int:
    """``agents put``: validate first (no database work for an invalid file), then one upsert.

    A running stack serves the stored agents without a restart (``core.agent_refresh``).
    """
    records = character_records(args.file)
    with open_container() as container:
        container.run(store_agents(container.adapter, records, args.file))
    for record in records:
        print(f"stored agent {record.name} ({record.id})", file=io.out)
    return 0


def character_records(path: Path) -> list[AgentRecord]:
    """The agents rows of a character file: each validated character's JSON dump, by its id.

    The id is the character's ``id``, else the id elizaOS derives from its name, as the runtime does.

    Raises:
        CharacterError: the file is invalid (names the file and the field).
        CliError: two characters of the file share a name.
    """
    characters = load_characters(path)
    records = [
        AgentRecord(c.id or string_to_uuid(c.name), c.name, c.model_dump(mode="json", by_alias=True))
        for c in characters
    ]
    _check_distinct(records, path)
    return records


async def store_agents(adapter: DatabaseAdapter, records: list[AgentRecord], source: Path) -> None:
    """Create or update the agents in one upsert, after checking that no other agent has their names.

    Raises:
        CliError: a name is taken by another agent (names are unique, any case).
    """
    taken = {a.name.lower(): a for a in await adapter.get_agents(include_disabled=True)}
    for record in records:
        other = taken.get(record.name.lower())
        if other is not None and other.id != record.id:
            raise CliError(
                f"{source}: the name {record.name!r} is taken by agent {other.id}"
                f" (names are unique, any case); rename it or give the character its id"
            )
    await adapter.upsert_agents(records)


def _check_distinct(records: list[AgentRecord], source: Path) -> None:
    seen: dict[str, AgentRecord] = {}
    for record in records:
        if seen.setdefault(record.name.lower(), record) is not record:
            raise CliError(f"{source}: two characters are named {record.name!r}")


def _summary(agent: AgentRecord) -> dict[str, Any]:
    character = agent.character
    return {
        "id": str(agent.id),
        "name": agent.name,
        "enabled": agent.enabled,
        "username": character.get("username"),
        "plugins": _as_list(character.get("plugins")),
        "bio": _as_list(character.get("bio")),
    }


def _as_list(value: Any) -> list[Any]:
    """A character field that should be a list (a string is one item); a stored document that is not
    valid (written by other code) is shown as it is, never a crash."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _secret_count(character: dict[str, Any]) -> int:
    settings = character.get("settings")
    legacy = settings.get("secrets") if isinstance(settings, dict) else None
    return sum(len(s) for s in (character.get("secrets"), legacy) if isinstance(s, dict))
