"""Log format: one short line in a terminal, Powertools JSON when deployed or not on a terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from functions.log_format import HumanFormatter, json_logs, powertools_formatter
from infra.local.logs import configure_logging, log_level

ROOT = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "terminal", "expected"),
    [
        ({}, True, False),
        ({}, False, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "messages"}, True, True),
        ({"LOG_FORMAT": "json"}, True, True),
        ({"LOG_FORMAT": "TEXT"}, False, False),
        ({"LOG_FORMAT": "text", "AWS_LAMBDA_FUNCTION_NAME": "messages"}, False, False),
    ],
    ids=["terminal", "pipe", "lambda", "forced json", "forced text", "forced text in lambda"],
)
def test_json_logs_follows_the_rule(environ, terminal, expected):
    stream = _Terminal() if terminal else io.StringIO()
    assert json_logs(environ, stream) is expected


def test_an_invalid_log_format_names_the_variable_and_never_stops_a_function():
    with pytest.raises(ValueError, match="LOG_FORMAT: must be 'json' or 'text', got 'xml'"):
        json_logs({"LOG_FORMAT": "xml"}, io.StringIO())
    assert powertools_formatter({"LOG_FORMAT": "xml", "AWS_LAMBDA_FUNCTION_NAME": "f"}, _Terminal()) is None


def test_deployed_functions_keep_powertools_json():
    assert powertools_formatter({"AWS_LAMBDA_FUNCTION_NAME": "messages"}, _Terminal()) is None
    assert isinstance(powertools_formatter({}, _Terminal()), HumanFormatter)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("core.runtime", logging.INFO, __file__, 1, "message %s", ("handled",), None)
    record.__dict__.update(extra)
    return record


def test_the_human_line_is_short_and_keeps_the_bound_keys():
    formatter = HumanFormatter(name="%(name)s", service="agent-messages")
    formatter.append_keys(correlation_id="req-1", function_name="messages", cold_start=True)
    line = formatter.format(_record(room_id="room-9"))
    assert "\n" not in line
    clock, rest = line.split(" ", 1)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", clock)
    # the Lambda context's constants (function_name, cold_start) are left out
    assert rest == "INFO  core.runtime: message handled  correlation_id=req-1  room_id=room-9"


def test_the_human_form_puts_an_exception_on_the_next_lines():
    formatter = HumanFormatter(name="%(name)s")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = _record(exc_info=sys.exc_info())
    first, *rest = formatter.format(record).splitlines()
    assert first.endswith("core.runtime: message handled")
    assert rest[0].startswith("Traceback") and rest[-1] == "RuntimeError: boom"


def test_the_stack_logs_json_to_a_pipe_and_lines_to_a_terminal(monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert isinstance(configure_logging(io.StringIO()).formatter, LambdaPowertoolsFormatter)
        assert not isinstance(configure_logging(io.StringIO()).formatter, HumanFormatter)
        assert isinstance(configure_logging(_Terminal()).formatter, HumanFormatter)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_log_level_defaults_to_warning_and_ignores_unknown_names():
    assert log_level({}) == logging.WARNING
    assert log_level({"LOG_LEVEL": "debug"}) == logging.DEBUG
    assert log_level({"LOG_LEVEL": "loud"}) == logging.WARNING


def test_a_handler_logs_one_short_line_in_a_real_terminal():
    """A function's Powertools logger, stdout on a pseudo-terminal: no JSON."""
    code = (
        "from functions.observability import Observability\n"
        "Observability('agent-messages').logger.info('hello', extra={'room_id': 'r1'})\n"
    )
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_FORMAT", "AWS_LAMBDA"))}
    env["POWERTOOLS_LOG_LEVEL"] = "INFO"  # the test session's conftest sets WARNING
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    output = b""
    try:
        while chunk := os.read(leader, 4096):
            output += chunk
    except OSError:  # EIO: the terminal's other end closed
        pass
    finally:
        os.close(leader)
    assert proc.wait(30) == 0, proc.stderr.read()
    line = output.decode().strip()
    assert "agent-messages: hello" in line and "room_id=r1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
