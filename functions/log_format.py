"""How log lines look: Powertools JSON when deployed or read by a program, one short line in a terminal.

Rule (:func:`json_logs`), first match wins:

1. ``LOG_FORMAT=json`` or ``LOG_FORMAT=text`` forces it;
2. in Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set): JSON, what CloudWatch Logs Insights queries;
3. otherwise JSON unless the stream is a terminal (so ``make run > stack.log`` writes JSON
   lines and ``make run`` in a terminal reads like a console log).

Deployed, nothing sets ``LOG_FORMAT``, so a function's lines are exactly Powertools' JSON.
The text form (:class:`HumanFormatter`) keeps every key Powertools would have written except
the Lambda context's constants: ``13:04:05.123 INFO  core.runtime: message handled  room_id=…``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

LOG_FORMAT_ENV = "LOG_FORMAT"
#: The values ``LOG_FORMAT`` accepts.
FORMATS = ("json", "text")
#: Keys of a Powertools line that a console reader does not need on every line.
_QUIET_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "name",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "exception",
        "exception_name",
        "exception_notes",
        "stack_trace",
    }
)


def json_logs(environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> bool:
    """Whether log lines are JSON (see the module docstring for the rule).

    Args:
        environ: The environment (``os.environ`` by default).
        stream: Where the lines go (``sys.stdout``, Powertools' default, by default).

    Raises:
        ValueError: ``LOG_FORMAT`` is set to something else than ``json`` or ``text`` (the message names it).
    """
    env = os.environ if environ is None else environ
    explicit = (env.get(LOG_FORMAT_ENV) or "").strip().lower()
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"{LOG_FORMAT_ENV}: must be 'json' or 'text', got {explicit!r}")
        return explicit == "json"
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return True
    target = sys.stdout if stream is None else stream
    try:
        return not target.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return True


def powertools_formatter(
    environ: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> LambdaPowertoolsFormatter | None:
    """The formatter for a Powertools ``Logger``: ``None`` (its JSON default) or a :class:`HumanFormatter`.

    An invalid ``LOG_FORMAT`` falls back to the rule without it: a typo must never stop a
    function from starting (the local stack rejects it at start-up instead).
    """
    try:
        as_json = json_logs(environ, stream)
    except ValueError:
        as_json = json_logs(
            {k: v for k, v in (os.environ if environ is None else environ).items() if k != LOG_FORMAT_ENV}, stream
        )
    return None if as_json else HumanFormatter()


class HumanFormatter(LambdaPowertoolsFormatter):
    """Powertools' formatter, writing ``HH:MM:SS.mmm LEVEL name: message  key=value...`` instead of JSON.

    Keys appended to the logger (``correlation_id``, the bound ``agent_id``/``room_id``) and a
    call's ``extra`` follow the message; an exception's traceback follows on the next lines.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("datefmt", "%H:%M:%S.%F")
        super().__init__(**kwargs)

    def serialize(self, log: Mapping[str, Any]) -> str:
        """One line from Powertools' structured record (plus the traceback, if any)."""
        name = log.get("name") or log.get("service") or ""
        if isinstance(name, str) and name.startswith("%("):  # a key appended outside an invocation
            name = log.get("service") or ""
        keys = "  ".join(f"{k}={v}" for k, v in log.items() if k not in _QUIET_KEYS and v not in (None, ""))
        line = f"{log.get('timestamp', '')} {str(log.get('level', '')):<5} {name}: {log.get('message', '')}"
        line = f"{line}  {keys}" if keys else line
        return f"{line}\n{log['exception']}" if log.get("exception") else line
