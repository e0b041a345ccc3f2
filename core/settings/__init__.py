"""Settings: process settings read once in the init phase, and the one rule every setting follows.

**The rule** (``parse_setting``), for a value from the environment or from a character's
``settings``/``secrets`` alike:

- unset, ``None`` or a blank string: the default;
- booleans: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off`` (any case);
- numbers: an ``int`` or ``float`` (a boolean is not a number), optionally within a range;
- anything else is a ``ConfigurationError`` whose message starts with the variable's name.

Process settings (``Settings.from_env``) are read once per container; per-agent settings
through ``AgentRuntime.setting(name, kind, default)``, which looks in the character's
``secrets``, then its ``settings``, then the runtime's settings, then the environment (elizaOS
``getSetting``) and applies the same rule.

Every variable is named once, in a module of this package: a ``SettingsGroup`` field's
``validation_alias`` or an ``AgentSetting`` (``core.settings.groups``: the one loader and the
one error formatter), in ``agents``, ``db``, ``knowledge``, ``memory``, ``providers``, ``tasks``
and ``process``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.settings.process import Settings

#: elizaOS's default for how many recent messages go into the prompt (``CONVERSATION_LENGTH``).
DEFAULT_CONVERSATION_LENGTH = 32


SettingT = TypeVar("SettingT", bool, int, float, str)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def setting_value(value: Any) -> Any:
    """What elizaOS ``getSetting`` returns for a stored value: ``"true"``/``"false"`` (any case) as booleans."""
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return value


def parse_setting(
    name: str,
    raw: object,
    kind: type[SettingT],
    default: SettingT,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> SettingT:
    """Read one setting by the rule in the module docstring.

    Args:
        name: The variable's name, for the error message (``"PROVIDER_TIMEOUT_S"``).
        raw: What the source holds: a string from the environment, or any JSON value from a character.
        kind: ``bool``, ``int``, ``float`` or ``str``.
        default: Returned when ``raw`` is unset or blank.
        minimum: Smallest accepted number (inclusive), for ``int`` and ``float``.
        maximum: Largest accepted number (inclusive), for ``int`` and ``float``.

    Raises:
        ConfigurationError: ``raw`` is not a ``kind`` or is out of range; the message names ``name``.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    return cast(SettingT, _parse_value(name, raw, kind, minimum, maximum))  # the value is a ``kind``


def _parse_value(name: str, raw: object, kind: type, minimum: float | None, maximum: float | None) -> object:
    text = raw.strip() if isinstance(raw, str) else raw
    if kind is bool:
        return _parse_bool(name, text)
    if kind is str:
        return str(text)
    return _parse_number(name, text, kind, minimum, maximum)


def _parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in _TRUE:
        return True
    if str(value).lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name}: must be true or false, got {value!r}")


def _parse_number(name: str, value: object, kind: type, minimum: float | None, maximum: float | None) -> float:
    noun = "an integer" if kind is int else "a number"
    if isinstance(value, bool):
        raise ConfigurationError(f"{name}: must be {noun}, got {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():  # 2.5 from a character is no count
        raise ConfigurationError(f"{name}: must be {noun}, got {value!r}")
    try:
        number: float = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}: must be {noun}, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):  # NaN and infinities are no setting
        raise ConfigurationError(f"{name}: must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigurationError(f"{name}: must be at least {minimum:g}, got {number!r}")
    if maximum is not None and number > maximum:
        raise ConfigurationError(f"{name}: must be at most {maximum:g}, got {number!r}")
    return number


if not TYPE_CHECKING:  # hidden from mypy, which would type every misspelt name of this module through it

    def __getattr__(name: str) -> Any:
        """``Settings``, imported on first use: only the init phase reads the process settings, and
        ``import core.runtime`` (which needs the rule above, not their models) does not pay for them."""
        if name == "Settings":  # core.settings.process builds on core.settings.db, whose groups build on the rule
            from core.settings.process import Settings

            return Settings
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_CONVERSATION_LENGTH", "SettingT", "Settings", "parse_setting"]
