"""Typed settings: one loader for groups, one error formatter, one spec per per-agent setting.

Every variable is named once, in a ``core.settings.<area>`` module, in one of two forms:

- **a group** (``SettingsGroup``): settings read together, each field naming its variable as
  its ``validation_alias``, with its bounds (``Field(4, ge=1, le=100, validation_alias=
  "TASK_CONCURRENCY")``) and cross-field checks. Process groups are read from the
  environment once, in the init phase (``TaskRunnerSettings.from_env()``); per-agent groups
  from an agent's settings when a feature needs them (``KnowledgeSettings.from_runtime(runtime)``).
- **a single per-agent setting** (``AgentSetting``): name, type, default and bounds, read through
  ``AgentRuntime.setting`` (``CONVERSATION_LENGTH.read(runtime)``).

Both read each value by ``core.settings.parse_setting`` (blank is unset; one set of booleans; a
boolean is not a number), so a value means the same in the environment and in a character.

**A malformed value is a ``ConfigurationError`` whose message names the variable**, raised when
the value is read: in the init phase for process settings (the deploy fails before it serves),
at first use for per-agent ones (the agent's operator sees ``KNOWLEDGE_MATCH_COUNT: must be an
integer, got 'many'``, never a silently different behaviour). Where a per-agent value is read
inside a provider or an evaluator, the runtime's isolation turns the error into a logged
failure of that part only, so the reply still goes out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Any, Generic, Protocol, Self, TypeVar, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from core.errors import ConfigurationError
from core.settings import SettingT, parse_setting


class SettingsSource(Protocol):
    """Anything with elizaOS ``getSetting`` (``AgentRuntime``): the raw value, ``None`` when unset."""

    def get_setting(self, key: str) -> Any: ...


class TypedSettingsSource(Protocol):
    """Anything with the typed per-agent accessor (``AgentRuntime.setting``)."""

    def setting(
        self,
        name: str,
        kind: type[SettingT],
        default: SettingT,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> SettingT: ...


class SettingsGroup(BaseModel):
    """Settings read together; each field names its variable once, as its ``validation_alias``.

    Code and tests may still build a group by field name (``TaskRunnerSettings(concurrency=2)``).
    Groups are frozen, refuse NaN and infinities, and are built on first use (``defer_build``;
    SnapStart builds them before the snapshot).
    """

    model_config = ConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, allow_inf_nan=False, defer_build=True
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The group from ``environ`` (``os.environ`` by default), by ``load_settings``.

        Raises:
            ConfigurationError: a value is malformed or out of range; the message names each variable.
        """
        return load_settings(cls, (os.environ if environ is None else environ).get)

    @classmethod
    def from_runtime(cls, runtime: SettingsSource) -> Self:
        """The group as one agent sees it (``runtime.get_setting``: secrets, settings, environment).

        Raises:
            ConfigurationError: a value is malformed or out of range; the message names each variable.
        """
        return load_settings(cls, runtime.get_setting)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name to variable name (``{"concurrency": "TASK_CONCURRENCY", ...}``)."""
        return {field: str(info.validation_alias or field) for field, info in cls.model_fields.items()}


GroupT = TypeVar("GroupT", bound=SettingsGroup)
#: What ``parse_setting`` returns for an unset value when asked for this default.
_UNSET: Any = object()


def load_settings(group: type[GroupT], read: Callable[[str], object]) -> GroupT:
    """Read a settings group: each variable by the rule, then the group's bounds and cross-checks.

    Args:
        group: The ``SettingsGroup`` subclass.
        read: A variable's raw value, ``None`` when unset (``environ.get``, ``runtime.get_setting``).

    Returns:
        The group; unset and blank variables take their field's default.

    Raises:
        ConfigurationError: one part per malformed or out-of-range variable (``NAME: what is wrong,
            got VALUE``), joined by ``; ``, so one deploy shows every mistake.
    """
    raw: dict[str, object] = {}
    problems: list[str] = []
    for field, name in group.variables().items():
        kind = _scalar_kind(group.model_fields[field].annotation)
        try:
            value = read(name) if kind is None else parse_setting(name, read(name), cast(Any, kind), _UNSET)
        except ConfigurationError as exc:
            problems.append(str(exc))
            continue
        if value is not _UNSET and value is not None:
            raw[name] = value
    if problems:
        raise ConfigurationError("; ".join(problems))
    try:
        return group.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(exc, group.variables())) from None


def _scalar_kind(annotation: object) -> type | None:
    # ``float | None`` reads as a float; anything else (lists, mappings) goes to pydantic as it is.
    union = get_origin(annotation) in (Union, UnionType)
    options = [a for a in get_args(annotation) if a is not type(None)] if union else [annotation]
    kind = options[0] if len(options) == 1 else None
    return kind if kind in (bool, int, float, str) else None


#: pydantic's bound errors in the rule's words, with the key of the bound in the error's context.
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("more than", "gt"),
    "less_than": ("less than", "lt"),
}


def describe_errors(exc: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """The one formatter of invalid settings: ``NAME: what is wrong, got VALUE``, joined by ``; ``.

    Args:
        exc: pydantic's error for a settings model.
        names: Field name to variable name, for a model validated by field name; a group's
            errors already carry the variable (its alias).
    """
    return "; ".join(_describe_error(error, names or {}) for error in exc.errors(include_url=False))


def _describe_error(error: ErrorDetails, names: Mapping[str, str]) -> str:
    context = error.get("ctx") or {}
    if error["type"] in _BOUNDS:
        words, key = _BOUNDS[error["type"]]
        bound = context[key]
        shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)  # 86400, not 86400.0
        message = f"must be {words} {shown}, got {error['input']!r}"
    elif error["type"] == "value_error":  # our validators' own words, without pydantic's "Value error, "
        message = str(context.get("error", error["msg"]))
    else:
        message = error["msg"]
    if not error["loc"]:  # a cross-field check: its message names the variables
        return message
    field = str(error["loc"][0])
    return f"{names.get(field, field)}: {message}"


@dataclass(frozen=True)
class AgentSetting(Generic[SettingT]):
    """One per-agent setting: its variable, type, default and bounds, named once.

    Attributes:
        name: The variable (``"CONVERSATION_LENGTH"``), looked up as ``AgentRuntime.get_setting`` does.
        kind: ``bool``, ``int``, ``float`` or ``str``.
        default: When unset or blank.
        minimum: Smallest accepted number (inclusive).
        maximum: Largest accepted number (inclusive).
    """

    name: str
    kind: type[SettingT]
    default: SettingT
    minimum: float | None = None
    maximum: float | None = None

    def read(self, runtime: TypedSettingsSource, default: SettingT | None = None) -> SettingT:
        """The agent's value, through ``runtime.setting`` (the one typed accessor).

        Args:
            runtime: The agent's runtime.
            default: Replaces ``self.default`` when it derives from other settings
                (``REFLECTION_INTERVAL``: a quarter of ``CONVERSATION_LENGTH``).

        Raises:
            ConfigurationError: the value is malformed or out of range; the message names the variable.
        """
        fallback = self.default if default is None else default
        return runtime.setting(self.name, self.kind, fallback, minimum=self.minimum, maximum=self.maximum)
