"""Agent characters: the elizaOS 1.x character schema, 0.x conversion and a JSON loader.

A character is the static description of an agent: its name, system prompt, bio, example
conversations, writing style, plugins and settings. The model below follows the elizaOS 1.x
``Character`` type (elizaOS ``packages/core/src/types/agent.ts``) and its zod schema
(``packages/core/src/schemas/character.ts``). Python attributes are snake_case; the camelCase
aliases are the elizaOS JSON keys, so ``model_dump(by_alias=True, mode="json")`` gives back an
elizaOS character file.

Many published characters still use the elizaOS 0.x format (``lore``, ``modelProvider``,
``clients``, ``messageExamples[][].user``). :func:`convert_legacy` turns such a dict into the 1.x
shape and reports every converted or dropped field; the loaders log those reports on the
``core.character`` logger.

Secrets (``secrets`` and the legacy ``settings.secrets``) never appear in ``repr()``, in warnings
or in :class:`CharacterError` messages.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "Character",
    "CharacterError",
    "KnowledgeItem",
    "MessageExample",
    "Style",
    "convert_legacy",
    "default_character_path",
    "load_character_dict",
    "load_characters",
]

logger = logging.getLogger(__name__)

_MAX_ERRORS_IN_MESSAGE = 10


class CharacterError(ValueError):
    """A character file or dict that cannot be loaded.

    The message names the source (file name, plus ``[index]`` for an element of a list) and the
    offending field. It is built from field locations and pydantic messages only, never from
    input values, so it cannot leak secrets.

    Attributes:
        source: The file path or label that was being loaded.
        errors: Structured errors, one dict per problem with the keys ``index`` (position in a
            list of characters, or ``None``), ``loc`` (tuple path), ``field`` (dotted path using
            the elizaOS JSON names, empty when the problem is the whole document), ``msg`` and
            ``type``.
    """

    def __init__(self, message: str, *, source: str, errors: list[dict[str, Any]] | None = None) -> None:
        """Create the error.

        Args:
            message: Human-readable message, already naming the source and field.
            source: The file path or label that was being loaded.
            errors: Structured errors; defaults to a single entry built from ``message``.
        """
        super().__init__(message)
        self.source = source
        self.errors = errors if errors is not None else [_error_entry((), message, "character_error")]


class MessageExample(BaseModel):
    """One message of an example conversation (elizaOS ``MessageExample``).

    Unknown keys are ignored, as zod's default ``strip`` does for nested objects in elizaOS.

    Attributes:
        name: Speaker; ``{{user1}}``/``{{name1}}`` placeholders are kept as they are.
        content: elizaOS ``Content``: usually ``{"text": ...}``, possibly ``action``,
            ``actions``, ``providers`` and so on. Kept as given.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    name: str
    content: dict[str, Any]


class KnowledgeItem(BaseModel):
    """A knowledge source given by file or directory (elizaOS ``{path|directory, shared?}``).

    Exactly one of ``path`` and ``directory`` must be set. The unset one is left out when
    serialising, so dumps stay valid elizaOS JSON.

    Attributes:
        path: A knowledge file.
        directory: A folder of knowledge files.
        shared: Whether the knowledge is shared between agents.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    path: str | None = None
    directory: str | None = None
    shared: bool = False

    @model_validator(mode="after")
    def _exactly_one_source(self) -> KnowledgeItem:
        if (self.path is None) == (self.directory is None):
            raise ValueError("exactly one of 'path' or 'directory' must be set")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_source(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class Style(BaseModel):
    """Writing-style directions (elizaOS ``style``).

    Attributes:
        all: Directions for every kind of output.
        chat: Directions for chat replies.
        post: Directions for posts.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    all: list[str] = []
    chat: list[str] = []
    post: list[str] = []


_KNOWLEDGE_TEXT = "text"
_KNOWLEDGE_SOURCE = "source"


def _knowledge_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return _KNOWLEDGE_TEXT
    return _KNOWLEDGE_SOURCE if isinstance(value, dict | KnowledgeItem) else None


#: A knowledge entry: a string, or a file/directory source. The callable discriminator picks one
#: branch, so errors name only that branch (its tag is removed from error paths, see _json_loc).
KnowledgeEntry = Annotated[
    Annotated[str, Tag(_KNOWLEDGE_TEXT)] | Annotated[KnowledgeItem, Tag(_KNOWLEDGE_SOURCE)],
    Discriminator(
        _knowledge_kind,
        custom_error_type="knowledge_entry",
        custom_error_message="Input should be a string or an object with 'path' or 'directory'",
    ),
]


class Character(BaseModel):
    """An agent character in the elizaOS 1.x format.

    Built from elizaOS ``packages/core/src/types/agent.ts`` (``Character``) and
    ``packages/core/src/schemas/character.ts`` (``characterSchema``). Like that strict zod
    schema, unknown fields are rejected here; the loaders drop them with a warning first (see
    :func:`convert_legacy`). Validate elizaOS JSON with ``Character.model_validate(data)``;
    snake_case names are accepted too. Dump with ``model_dump(by_alias=True, mode="json")``:
    unset optional scalars (``id``, ``username``, ``system``) are left out, as elizaOS expects.

    Attributes:
        id: Agent UUID, if fixed by the file.
        name: Display name, stripped, never empty.
        username: Platform username.
        system: System prompt.
        templates: Prompt templates by name.
        bio: Biography lines; a single string becomes a one-item list.
        message_examples: Example conversations, each a list of messages.
        post_examples: Example posts.
        topics: Topics of interest.
        adjectives: Character traits.
        knowledge: Knowledge strings or :class:`KnowledgeItem` sources.
        plugins: Plugin package names.
        settings: Free-form settings (``voice``, ``model``, ``MODEL_PROVIDER``...).
        secrets: Secret settings; excluded from ``repr()``. Never log them.
        style: Writing-style directions.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True)

    id: UUID | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    username: str | None = None
    system: str | None = None
    templates: dict[str, str] = {}
    bio: list[str] = []
    message_examples: list[list[MessageExample]] = []
    post_examples: list[str] = []
    topics: list[str] = []
    adjectives: list[str] = []
    knowledge: list[KnowledgeEntry] = []
    plugins: list[str] = []
    settings: dict[str, Any] = {}
    secrets: dict[str, Any] = Field(default={}, repr=False)
    style: Style = Field(default_factory=Style)

    @field_validator("bio", mode="before")
    @classmethod
    def _bio_string_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_serializer(mode="wrap")
    def _omit_unset_scalars(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    def all_style(self, kind: Literal["chat", "post"]) -> list[str]:
        """Return the style directions for one kind of output.

        Args:
            kind: ``"chat"`` or ``"post"``.

        Returns:
            ``style.all`` followed by ``style.chat`` or ``style.post``.

        Raises:
            ValueError: If ``kind`` is neither ``"chat"`` nor ``"post"``.
        """
        if kind not in ("chat", "post"):
            raise ValueError(f"style kind must be 'chat' or 'post', not {kind!r}")
        return [*self.style.all, *getattr(self.style, kind)]


# --------------------------------------------------------------------------------------------
# elizaOS 0.x -> 1.x conversion
# --------------------------------------------------------------------------------------------


def convert_legacy(raw: dict[str, Any], *, source: str) -> tuple[dict[str, Any], list[str]]:
    """Convert an elizaOS 0.x character dict to the 1.x shape.

    Rules (elizaOS 1.x dropped these 0.x fields; its migration merged ``lore`` into ``bio``):

    - ``lore`` is appended to ``bio``.
    - ``messageExamples[][].user`` becomes ``name`` (a ``user`` next to a ``name`` is dropped).
    - ``modelProvider`` moves to ``settings["MODEL_PROVIDER"]`` unless that is already set.
    - ``clients`` is dropped: clients are not plugins in this runtime.
    - ``settings.secrets`` is merged into top-level ``secrets``; top-level values win.
    - Any other top-level key the 1.x schema lacks (``twitterSpaces``, ``people``...) is
      dropped.

    A 1.x dict passes through unchanged with no warnings. The input is not modified.

    Args:
        raw: The character as parsed from JSON.
        source: File name or label, used as the prefix of every warning.

    Returns:
        The 1.x-shaped dict and one human-readable warning per converted or dropped field.
        Warnings never contain secret values.

    Raises:
        CharacterError: If a legacy field has a shape that cannot be converted (``lore`` not a
            string or list of strings, ``settings.secrets`` not an object).
    """
    data = copy.deepcopy(raw)
    notes = [
        *_merge_lore(data, source),
        *_rename_example_users(data),
        *_move_model_provider(data),
        *_drop_clients(data),
        *_move_settings_secrets(data, source),
        *_drop_unknown_fields(data),
    ]
    return data, [f"{source}: {note}" for note in notes]


def _merge_lore(data: dict[str, Any], source: str) -> list[str]:
    if "lore" not in data:
        return []
    lore = data.pop("lore")
    lore = [lore] if isinstance(lore, str) else lore
    if not isinstance(lore, list) or not all(isinstance(line, str) for line in lore):
        raise _field_error(source, "lore", "expected a string or a list of strings")
    bio = data.get("bio", [])
    bio = [bio] if isinstance(bio, str) else bio
    if isinstance(bio, list):
        data["bio"] = [*bio, *lore]
    return [f"lore: merged {len(lore)} entries into bio (elizaOS 0.x field)"]


def _rename_example_users(data: dict[str, Any]) -> list[str]:
    messages = [
        message
        for conversation in _as_list(data.get("messageExamples"))
        for message in _as_list(conversation)
        if isinstance(message, dict) and "user" in message
    ]
    for message in messages:
        user = message.pop("user")
        message.setdefault("name", user)
    if not messages:
        return []
    return [f"messageExamples: renamed 'user' to 'name' in {len(messages)} messages (elizaOS 0.x format)"]


def _move_model_provider(data: dict[str, Any]) -> list[str]:
    if "modelProvider" not in data:
        return []
    provider = data.pop("modelProvider")
    settings = data.setdefault("settings", {})
    if not isinstance(settings, dict):
        return [f"modelProvider: dropped {provider!r} because settings is not an object"]
    if "MODEL_PROVIDER" in settings:
        return [f"modelProvider: dropped {provider!r}, settings.MODEL_PROVIDER is already set"]
    settings["MODEL_PROVIDER"] = provider
    return [f"modelProvider: moved {provider!r} to settings.MODEL_PROVIDER (elizaOS 0.x field)"]


def _drop_clients(data: dict[str, Any]) -> list[str]:
    if "clients" not in data:
        return []
    clients = data.pop("clients")
    return [f"clients: dropped {clients!r} (elizaOS 0.x field; clients are not plugins here)"]


def _move_settings_secrets(data: dict[str, Any], source: str) -> list[str]:
    settings = data.get("settings")
    if not isinstance(settings, dict) or "secrets" not in settings:
        return []
    legacy = settings["secrets"]
    if not isinstance(legacy, dict):
        raise _field_error(source, "settings.secrets", "expected an object")
    secrets = data.setdefault("secrets", {})
    if not isinstance(secrets, dict):
        return []  # validation reports the malformed top-level secrets
    del settings["secrets"]
    kept = sum(1 for key in legacy if key in secrets)
    data["secrets"] = {**legacy, **secrets}
    if not legacy:
        return ["settings.secrets: dropped (empty)"]
    note = f"settings.secrets: moved {len(legacy) - kept} keys to top-level secrets"
    return [note + (f" ({kept} overridden by top-level secrets)" if kept else "")]


def _drop_unknown_fields(data: dict[str, Any]) -> list[str]:
    unknown = [key for key in data if key not in _known_fields()]
    for key in unknown:
        del data[key]
    return [f"{key}: dropped unknown field (not in the elizaOS 1.x character schema)" for key in unknown]


def _known_fields() -> set[str]:
    return {name for field, info in Character.model_fields.items() for name in (field, info.alias or field)}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def default_character_path() -> Path:
    """Return the path of the bundled default character.

    It is the elizaOS starter's Eliza (``elizaOS/eliza-starter``,
    ``characters/eliza.character.json``), shipped as ``core/characters/eliza.character.json``.

    Returns:
        The path of ``eliza.character.json`` next to this module.
    """
    return Path(__file__).resolve().with_name("characters") / "eliza.character.json"


def load_characters(path: str | Path) -> list[Character]:
    """Load the characters of one JSON file.

    The file holds one character object or a list of them (like elizaOS ``multi-chars.json``),
    in the elizaOS 1.x or 0.x format. Conversion warnings are logged on ``core.character``.

    Args:
        path: The JSON file.

    Returns:
        The characters, in file order.

    Raises:
        CharacterError: If the file cannot be read, is empty, is not JSON, is neither an object
            nor a list, or a character is invalid. The message names the file, the list index
            when relevant, and the field.
    """
    source = str(path)
    data = _read_json(Path(path), source)
    if isinstance(data, dict):
        return [_build(data, source, index=None)]
    if isinstance(data, list):
        return _build_all(data, source)
    message = f"top-level JSON must be a character object or a list of characters, got {_json_type(data)}"
    raise _document_error(source, message, "invalid_document")


def load_character_dict(data: dict[str, Any], *, source: str = "<dict>") -> Character:
    """Validate one character given as a dict (1.x or 0.x format).

    Args:
        data: The character, as parsed from JSON.
        source: Label used in warnings and errors, such as a file name.

    Returns:
        The validated character.

    Raises:
        CharacterError: If ``data`` is not a dict or is not a valid character.
    """
    if not isinstance(data, dict):
        raise _document_error(source, f"a character must be an object, got {_json_type(data)}", "invalid_type")
    return _build(data, source, index=None)


def _read_json(path: Path, source: str) -> Any:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise _document_error(source, f"cannot read file: {exc.strerror or exc}", "read_error") from None
    except UnicodeDecodeError as exc:
        raise _document_error(source, f"not UTF-8 text (byte {exc.start})", "invalid_encoding") from None
    if not text.strip():
        raise _document_error(source, "file is empty", "empty_file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise _document_error(source, message, "json_invalid") from None


def _build_all(items: list[Any], source: str) -> list[Character]:
    if not items:
        raise _document_error(source, "the list holds no characters", "empty_list")
    characters: list[Character] = []
    failures: list[CharacterError] = []
    for index, item in enumerate(items):
        try:
            characters.append(_build_item(item, source, index))
        except CharacterError as exc:
            failures.append(exc)
    if failures:
        message = "; ".join(str(exc) for exc in failures)
        raise CharacterError(message, source=source, errors=[e for exc in failures for e in exc.errors])
    return characters


def _build_item(item: Any, source: str, index: int) -> Character:
    if not isinstance(item, dict):
        message = f"a character must be an object, got {_json_type(item)}"
        raise CharacterError(
            f"{source}[{index}]: {message}",
            source=source,
            errors=[_error_entry((), message, "invalid_type", index)],
        )
    return _build(item, source, index=index)


def _build(data: dict[str, Any], source: str, *, index: int | None) -> Character:
    label = source if index is None else f"{source}[{index}]"
    try:
        converted, warnings = convert_legacy(data, source=label)
    except CharacterError as exc:
        errors = [{**err, "index": index} for err in exc.errors]
        raise CharacterError(str(exc), source=source, errors=errors) from None
    for warning in warnings:
        logger.warning("%s", warning)
    try:
        return Character.model_validate(converted)
    except ValidationError as exc:
        # `from None`: the pydantic error embeds input values (secrets) in its text.
        raise _validation_error(exc, source, label, index) from None


def _validation_error(exc: ValidationError, source: str, label: str, index: int | None) -> CharacterError:
    errors = [
        _error_entry(err["loc"], err["msg"], err["type"], index)
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    parts = [f"{label}: {err['field'] or '<character>'}: {err['msg']}" for err in errors]
    if len(parts) > _MAX_ERRORS_IN_MESSAGE:
        parts = [*parts[:_MAX_ERRORS_IN_MESSAGE], f"{label}: and {len(parts) - _MAX_ERRORS_IN_MESSAGE} more"]
    return CharacterError("; ".join(parts), source=source, errors=errors)


def _error_entry(loc: tuple[Any, ...], msg: str, kind: str, index: int | None = None) -> dict[str, Any]:
    return {
        "index": index,
        "loc": _json_loc(tuple(loc)),
        "field": ".".join(str(p) for p in _json_loc(tuple(loc))),
        "msg": msg,
        "type": kind,
    }


def _json_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union tag pydantic inserts in ``knowledge.<i>.<tag>...`` error paths."""
    if len(loc) > 2 and loc[0] == "knowledge" and loc[2] in (_KNOWLEDGE_TEXT, _KNOWLEDGE_SOURCE):
        return loc[:2] + loc[3:]
    return loc


def _document_error(source: str, message: str, kind: str) -> CharacterError:
    return CharacterError(f"{source}: {message}", source=source, errors=[_error_entry((), message, kind)])


def _field_error(label: str, field: str, message: str) -> CharacterError:
    entry = _error_entry(tuple(field.split(".")), message, "invalid_legacy_field")
    return CharacterError(f"{label}: {field}: {message}", source=label, errors=[entry])


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)
