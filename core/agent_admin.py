"""Managing stored agents: create or replace, change, disable or remove; one code path for the API and the CLI.

``PUT|PATCH|DELETE /agents/{agent}`` (``functions.api.agents``) and ``agent agents put|delete``
(``infra.cli.agents``) both call these functions, so a character is validated, its plugins
checked and its row written the same way whoever asks. Nothing is written when a check fails.

- **Documents.** A character is an elizaOS character document, 1.x or 0.x (``core.character``
  converts 0.x). One document per call: a list is refused (``InvalidAgent`` naming ``body``).
- **Plugins.** A stored character is loaded by every warm container, and a plugin it names is
  imported there (``core.blueprint.character_plugins``). So only plugins on the allow-list may
  be named: ``AGENT_PLUGIN_ALLOWLIST`` (comma-separated import paths), by default the
  deployment's own (``MODEL_PLUGINS`` and the plugins the ``CHARACTERS`` files name). Any other
  Python import path is refused (``InvalidAgent`` naming ``plugins``), so an API caller cannot
  make a container import an arbitrary module. elizaOS npm names (``@elizaos/plugin-openai``)
  are accepted: they are never imported (skipped with a warning when the agent loads).
  ``core.agent_refresh`` applies the same policy to rows it reads, for rows written by other code.
- **Configured agents.** An agent from this deployment's ``CHARACTERS`` is written again from its
  file by every cold start (``Orchestrator.add_agents``): changing it here would be undone,
  container by container, and a purged one created again, empty. So it is managed by its file
  alone (``ConfiguredAgent``): edit ``CHARACTERS`` and deploy.
- **Serving.** A stored change reaches every warm container without a restart and without a
  query per request: ``core.agent_refresh`` re-reads the table at most every ``AGENT_REFRESH_S``
  (5 s) and, for a name it does not know, at most every ``AGENT_REFRESH_ON_MISS_S`` (1 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.blueprint import BUILT_IN_EQUIVALENTS
from core.character import Character, CharacterError, load_character_dict
from core.db.adapter import AgentRecord
from core.db.postgres.agents import merge_character
from core.settings.agents import PluginAllowSettings
from core.uuid import string_to_uuid

if TYPE_CHECKING:
    from core.db.adapter import DatabaseAdapter

__all__ = [
    "AgentAdminError",
    "AgentNameTaken",
    "ConfiguredAgent",
    "DeleteOutcome",
    "InvalidAgent",
    "PluginPolicy",
    "PutOutcome",
    "UnknownAgent",
    "agent_record",
    "delete_agent",
    "find_agent",
    "parse_character",
    "patch_agent",
    "public_view",
    "put_agent",
    "put_agents",
]


class AgentAdminError(Exception):
    """A request to manage an agent that is refused; nothing was written."""


class InvalidAgent(AgentAdminError):
    """The document or change is not acceptable (HTTP 422).

    Args:
        fields: One entry per problem: ``field`` (dotted elizaOS JSON path, ``body`` for the
            whole document), ``message`` and ``type``. Never holds input values (secrets).
    """

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['message']}" for f in fields))
        self.fields = fields


class UnknownAgent(AgentAdminError):
    """No agent has this id or name (HTTP 404)."""


class AgentNameTaken(AgentAdminError):
    """Another agent already has this name, in any case (HTTP 409)."""


class ConfiguredAgent(AgentAdminError):
    """The agent comes from the deployment's ``CHARACTERS``: its file is its source (HTTP 409)."""


@dataclass(frozen=True)
class PluginPolicy:
    """Which Python plugins a stored character may name.

    Attributes:
        allowed: Import paths (``pkg.mod`` or ``pkg.mod:attr``) allowed.
    """

    allowed: frozenset[str]

    @classmethod
    def for_deployment(cls, model_plugins: Collection[str], characters: Collection[Character]) -> PluginPolicy:
        """``AGENT_PLUGIN_ALLOWLIST`` when set, else ``MODEL_PLUGINS`` and the plugins the configured characters name.

        Args:
            model_plugins: The deployment's ``MODEL_PLUGINS`` import paths.
            characters: The deployment's configured characters (``CHARACTERS``).
        """
        listed = PluginAllowSettings.from_env().names()
        if listed is not None:
            return cls(listed)
        named = {p for c in characters for p in c.plugins if _imported(p)}
        return cls(frozenset({*model_plugins, *named}))

    def refusals(self, plugins: Collection[str]) -> list[str]:
        """The plugins named that would be imported and are not allowed, in the order given."""
        return [p for p in plugins if _imported(p) and p not in self.allowed]

    def check(self, character: Character) -> None:
        """Refuse a character naming a plugin off the list.

        Raises:
            InvalidAgent: naming ``plugins`` (and each refused path, never other input).
        """
        refused = self.refusals(character.plugins)
        if refused:
            allowed = ", ".join(sorted(self.allowed)) or "none"
            raise InvalidAgent(
                [
                    {
                        "field": "plugins",
                        "type": "plugin_not_allowed",
                        "message": f"not on this deployment's plugin allow-list: {', '.join(refused)}"
                        f" (AGENT_PLUGIN_ALLOWLIST; allowed: {allowed})",
                    }
                ]
            )


def _imported(name: str) -> bool:
    """Whether ``core.blueprint.character_plugins`` would import this name (npm names are skipped)."""
    return name not in BUILT_IN_EQUIVALENTS and not name.startswith("@") and "/" not in name


@dataclass(frozen=True)
class PutOutcome:
    """What ``put_agent`` did.

    Attributes:
        record: The stored agent (secrets included: never return them to a caller).
        created: True for a new agent, False for a replaced one.
    """

    record: AgentRecord
    created: bool


@dataclass(frozen=True)
class DeleteOutcome:
    """What ``delete_agent`` did.

    Attributes:
        record: The agent as it was.
        purged: True when the row and everything it owns were deleted; False when disabled.
        memories: Memories deleted with it (purge), or kept (disable).
    """

    record: AgentRecord
    purged: bool
    memories: int


def parse_character(document: Any, *, source: str = "body") -> Character:
    """One character from a parsed JSON document (elizaOS 1.x or 0.x).

    Raises:
        InvalidAgent: a list (one character per request), not an object, or not a valid
            character; each problem names its field (``name``, ``bio``...).
    """
    if isinstance(document, list):
        raise InvalidAgent(
            [
                {
                    "field": "body",
                    "type": "one_character",
                    "message": f"one character per request, got a list of {len(document)};"
                    " send each to its own /agents/{name}",
                }
            ]
        )
    try:
        return load_character_dict(document, source=source)
    except CharacterError as exc:
        raise InvalidAgent(
            [{"field": e["field"] or "body", "type": e["type"], "message": e["msg"]} for e in exc.errors]
        ) from None


def agent_record(character: Character, agent_id: UUID | None = None) -> AgentRecord:
    """The row of a character: its id (given, the character's, or derived from its name as elizaOS does)."""
    agent_id = agent_id or character.id or string_to_uuid(character.name)
    return AgentRecord(agent_id, character.name, character.model_dump(mode="json", by_alias=True))


async def find_agent(adapter: DatabaseAdapter, ref: str | UUID) -> AgentRecord | None:
    """An agent by id, or by name in any case, enabled or not (``None`` when there is none)."""
    agent_id = _as_uuid(ref)
    if agent_id is not None:
        return await adapter.get_agent(agent_id)
    wanted = str(ref).strip().lower()
    return next((a for a in await adapter.get_agents(include_disabled=True) if a.name.lower() == wanted), None)


async def put_agent(
    adapter: DatabaseAdapter,
    character: Character,
    *,
    ref: str | None = None,
    policy: PluginPolicy,
    configured: Collection[UUID] = (),
) -> PutOutcome:
    """Create or replace an agent from a validated character, and serve it (``enabled``).

    Replacing is whole: fields (``secrets`` included) absent from the document are gone.

    Args:
        adapter: The database.
        character: The validated character (``parse_character``).
        ref: The id or name it is stored under (the API's ``{agent}``); ``None``: the
            character's id, else the id derived from its name.
        policy: The plugin allow-list.
        configured: Ids of the deployment's configured agents (``CHARACTERS``).

    Raises:
        InvalidAgent: a plugin off the list; an ``id`` other than the path's; a name other than
            the path's when the path is a name (rename through the id).
        AgentNameTaken: another agent has the name.
        ConfiguredAgent: the agent is one of the deployment's ``CHARACTERS``.
    """
    [outcome] = await put_agents(adapter, [(character, ref)], policy=policy, configured=configured)
    return outcome


async def put_agents(
    adapter: DatabaseAdapter,
    characters: Sequence[tuple[Character, str | None]],
    *,
    policy: PluginPolicy,
    configured: Collection[UUID] = (),
) -> list[PutOutcome]:
    """``put_agent`` for several characters (a character file's list): every check passes before any write.

    Args:
        adapter: The database.
        characters: ``(character, ref)`` pairs, as ``put_agent`` takes them.
        policy: The plugin allow-list.
        configured: Ids of the deployment's configured agents.

    Raises:
        InvalidAgent, AgentNameTaken, ConfiguredAgent: as ``put_agent``; nothing is written.
    """
    plans = [await _plan_put(adapter, c, ref, policy, configured) for c, ref in characters]
    await adapter.upsert_agents([record for record, _ in plans])
    for record, current in plans:
        if current is not None and not current.enabled:
            await adapter.update_agent(record.id, {"enabled": True})
    return [PutOutcome(record._replace(enabled=True), created=current is None) for record, current in plans]


async def _plan_put(
    adapter: DatabaseAdapter,
    character: Character,
    ref: str | None,
    policy: PluginPolicy,
    configured: Collection[UUID],
) -> tuple[AgentRecord, AgentRecord | None]:
    """The row to write and the one it replaces, once every check passed (no write)."""
    policy.check(character)
    existing = await find_agent(adapter, ref) if ref is not None else None
    ref_id = _as_uuid(ref) if ref is not None else None
    if existing is not None:
        agent_id = existing.id
    elif ref_id is not None:
        agent_id = ref_id
    else:
        agent_id = character.id or string_to_uuid(character.name)
    if character.id is not None and character.id != agent_id:
        raise InvalidAgent([_field("id", "id_mismatch", f"the document's id is not the agent's ({agent_id})")])
    if ref is not None and ref_id is None and character.name.lower() != ref.strip().lower():
        raise InvalidAgent(
            [_field("name", "name_mismatch", "the document names another agent than the path; rename through the id")]
        )
    if agent_id in configured:
        raise ConfiguredAgent(f"agent {character.name} comes from this deployment's CHARACTERS: change its file")
    await _check_name_free(adapter, character.name, agent_id)
    current = existing or await adapter.get_agent(agent_id)
    return agent_record(character, agent_id), current


async def patch_agent(
    adapter: DatabaseAdapter,
    ref: str | UUID,
    changes: Mapping[str, Any],
    *,
    policy: PluginPolicy,
    configured: Collection[UUID] = (),
) -> AgentRecord:
    """Change some fields of an agent (elizaOS ``updateAgent``).

    Args:
        adapter: The database.
        ref: The agent's id or name.
        changes: A partial agent: character fields (top-level ones replace the stored ones;
            ``settings`` and ``secrets`` are deep-merged, ``null`` removes a key) and ``enabled``.
        policy: The plugin allow-list.
        configured: Ids of the deployment's configured agents (``CHARACTERS``), which are refused.

    Returns:
        The agent as stored now.

    Raises:
        UnknownAgent: no such agent.
        InvalidAgent: ``id`` given, ``enabled`` not a boolean, the result not a valid
            character (the field named), or a plugin off the list.
        AgentNameTaken: the new name is another agent's.
        ConfiguredAgent: the agent is one of the deployment's ``CHARACTERS``.
    """
    existing = await find_agent(adapter, ref)
    if existing is None:
        raise UnknownAgent(f"no agent {ref}")
    character_changes = {k: v for k, v in changes.items() if k != "enabled"}
    problems = []
    if "id" in character_changes:
        problems.append(_field("id", "read_only", "an agent's id cannot change"))
    enabled = changes.get("enabled")
    if "enabled" in changes and not isinstance(enabled, bool):
        problems.append(_field("enabled", "bool_type", "must be true or false"))
    if problems:
        raise InvalidAgent(problems)
    if existing.id in configured:
        raise ConfiguredAgent(f"agent {existing.name} comes from this deployment's CHARACTERS: change its file")
    merged = parse_character(merge_character(existing.character, character_changes))
    policy.check(merged)
    if merged.name.lower() != existing.name.lower():
        await _check_name_free(adapter, merged.name, existing.id)
    update: dict[str, Any] = {}
    if character_changes:
        update["character"] = character_changes
    if enabled is not None:
        update["enabled"] = enabled
    if update:
        try:
            await adapter.update_agent(existing.id, update)
        except ValueError as exc:  # a name taken since the check (the unique index)
            raise AgentNameTaken(str(exc)) from None
    stored = await adapter.get_agent(existing.id)
    if stored is None:
        raise UnknownAgent(f"no agent {ref}")  # deleted meanwhile
    return stored


async def delete_agent(
    adapter: DatabaseAdapter, ref: str | UUID, *, purge: bool = False, configured: Collection[UUID] = ()
) -> DeleteOutcome:
    """Disable an agent (its memories kept), or with ``purge`` delete it with everything it owns.

    Disabling keeps the row and every memory, room, document and task; ``enabled`` true (``PATCH``)
    serves it again. Purging deletes the row, its memories, embeddings, entities, rooms,
    participants, relationships, components, logs and tasks (``ON DELETE CASCADE``).

    Raises:
        UnknownAgent: no such agent.
        ConfiguredAgent: one of the deployment's ``CHARACTERS`` (every cold start registers it
            again: remove it from ``CHARACTERS`` instead).
    """
    existing = await find_agent(adapter, ref)
    if existing is None:
        raise UnknownAgent(f"no agent {ref}")
    if existing.id in configured:
        raise ConfiguredAgent(
            f"agent {existing.name} comes from this deployment's CHARACTERS: every cold start serves it again;"
            " remove it from CHARACTERS instead"
        )
    memories = await adapter.count_memories(existing.id)
    if not purge:
        if existing.enabled:
            await adapter.update_agent(existing.id, {"enabled": False})
        return DeleteOutcome(existing, purged=False, memories=memories)
    await adapter.delete_agent(existing.id)
    return DeleteOutcome(existing, purged=True, memories=memories)


def public_view(record: AgentRecord) -> dict[str, Any]:
    """An agent for an admin: id, name, enabled, its character without secret values, and ``secretNames``.

    A stored document that no longer validates (written by other code) is shown as stored, secrets removed.
    """
    document = dict(record.character)
    secrets = document.pop("secrets", None)
    names = sorted(secrets) if isinstance(secrets, dict) else []
    settings = document.get("settings")
    if isinstance(settings, dict) and isinstance(settings.get("secrets"), dict):
        names = sorted({*names, *settings["secrets"]})
        document["settings"] = {k: v for k, v in settings.items() if k != "secrets"}
    return {
        "id": str(record.id),
        "name": record.name,
        "enabled": record.enabled,
        "character": document,
        "secretNames": names,
    }


async def _check_name_free(adapter: DatabaseAdapter, name: str, agent_id: UUID) -> None:
    wanted = name.lower()
    for other in await adapter.get_agents(include_disabled=True):
        if other.name.lower() == wanted and other.id != agent_id:
            raise AgentNameTaken(f"the name {name!r} is taken by agent {other.id} (names are unique, any case)")


def _as_uuid(ref: str | UUID | None) -> UUID | None:
    if ref is None or isinstance(ref, UUID):
        return ref
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def _field(field: str, kind: str, message: str) -> dict[str, str]:
    return {"field": field, "type": kind, "message": message}
