"""``agent agents list|show|put|delete``: the agents (characters) stored in the database.

``show`` never prints secrets (``secrets``, legacy ``settings.secrets``): it says how many
there are. ``put`` validates a character file (elizaOS 1.x or 0.x, one character or a list)
with ``core.character`` and stores it by id (the character's ``id``, else the id elizaOS
derives from its name, as the runtime does), so a later ``put`` of the same file replaces it
and serves it again if it was disabled. ``delete`` disables an agent (memories kept), or with
``--purge`` deletes it with its memories. ``put`` and ``delete`` run ``core.agent_admin``, the
code of ``PUT`` and ``DELETE /agents/{agent}``: the same checks (plugins on the allow-list
``AGENT_PLUGIN_ALLOWLIST``, names unique, the deployment's ``CHARACTERS`` left to their files),
nothing written when one fails. A running stack serves what they stored without a restart: a
new agent from the first request naming it, a changed or disabled one within
``AGENT_REFRESH_S`` (``core.agent_refresh``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import agent_admin
from core.character import load_characters
from core.db.adapter import AgentRecord
from core.uuid import string_to_uuid
from infra.cli.common import CliError, Io, cell, find_agent, open_container, print_table, public_character

if TYPE_CHECKING:
    from core.db.adapter import DatabaseAdapter


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agents list``, ``agents show``, ``agents put`` and ``agents delete``."""
    parser = groups.add_parser(
        "agents",
        help="agents stored in the database",
        description="Agents (characters) stored in the database: list, show, put, delete.",
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

    delete = commands.add_parser(
        "delete",
        help="disable an agent (memories kept), or --purge it with its memories",
        description="Disable an agent: no longer served, its memories, rooms and documents kept (put it"
        " again to serve it). With --purge, delete it with its memories, rooms, documents and tasks.",
    )
    delete.add_argument("agent", metavar="AGENT", help="agent id or name (any case)")
    delete.add_argument("--purge", action="store_true", help="delete the agent and everything it owns")
    delete.set_defaults(handler=delete_agent)


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
    policy = agent_admin.PluginPolicy.for_deployment(_model_plugins(), _deployment_characters())
    for record in records:  # before any database work, as the other checks of the file
        try:
            policy.check(agent_admin.parse_character(record.character, source=str(args.file)))
        except agent_admin.InvalidAgent as exc:
            raise CliError(f"{args.file}: {record.name}: {exc}") from None
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
    """Create or replace the agents with ``core.agent_admin.put_agents`` (every check before any write).

    Raises:
        CliError: a name is taken by another agent (names are unique, any case), a plugin is not
            on the allow-list, or an agent is one of the deployment's ``CHARACTERS``.
    """
    characters = [agent_admin.parse_character(r.character, source=str(source)) for r in records]
    pairs: list[tuple[Any, str | None]] = [(c, str(r.id)) for c, r in zip(characters, records, strict=True)]
    configured = [c.id or string_to_uuid(c.name) for c in _deployment_characters()]
    policy = agent_admin.PluginPolicy.for_deployment(_model_plugins(), _deployment_characters())
    try:
        await agent_admin.put_agents(adapter, pairs, policy=policy, configured=configured)
    except agent_admin.AgentNameTaken as exc:
        raise CliError(f"{source}: {exc}; rename it or give the character its id") from None
    except agent_admin.AgentAdminError as exc:
        raise CliError(f"{source}: {exc}") from None


def delete_agent(args: argparse.Namespace, io: Io) -> int:
    """``agents delete``: disable (memories kept), or ``--purge`` (deleted with its memories)."""
    configured = [c.id or string_to_uuid(c.name) for c in _deployment_characters()]
    with open_container() as container:
        try:
            outcome = container.run(
                agent_admin.delete_agent(container.adapter, args.agent, purge=args.purge, configured=configured)
            )
        except agent_admin.UnknownAgent:
            raise CliError(f"no agent {args.agent!r} (see `agent agents list`)") from None
        except agent_admin.AgentAdminError as exc:
            raise CliError(str(exc)) from None
    record = outcome.record
    if outcome.purged:
        print(f"deleted agent {record.name} ({record.id}) with its {outcome.memories} memories", file=io.out)
    else:
        print(
            f"disabled agent {record.name} ({record.id}); its {outcome.memories} memories are kept"
            " (`agent agents put` serves it again, --purge deletes them)",
            file=io.out,
        )
    return 0


def _deployment_characters() -> list[Any]:
    """The configured characters (``CHARACTERS``, else Eliza) of the CLI's environment."""
    from core.deployment.plugins import configured_characters
    from core.settings import Settings

    return configured_characters(Settings.from_env())


def _model_plugins() -> list[str]:
    from core.settings import Settings

    return Settings.from_env().model_plugins


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
