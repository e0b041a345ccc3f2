"""Start-up problems of the local stack, said in one line that names the variable or file.

``make run`` with a bad setting, a broken character file, a port in use or a missing model
must print one readable line and exit non-zero, not a traceback: :func:`describe_startup_error`
turns the exceptions those raise into that line, and the helpers here check what can be
checked before anything is started.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import subprocess
from collections.abc import Iterator

#: How many pydantic errors a line lists before "and N more".
_MAX_FIELDS = 3


class StartupError(Exception):
    """A problem that stops the stack from starting; its message is the whole line to print."""


def env_number(name: str, default: float, *, low: float, high: float, integer: bool = False) -> float:
    """A number from the environment, checked.

    Args:
        name: The variable.
        default: Its value when unset or empty.
        low: Smallest accepted value.
        high: Largest accepted value.
        integer: Accept integers only.

    Raises:
        StartupError: not a number (an integer), or out of range; the message names the variable.
    """
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    kind = "an integer" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise StartupError(f"{name}: must be {kind} from {low:g} to {high:g}, got {raw!r}") from None
    if not low <= value <= high:
        raise StartupError(f"{name}: must be {kind} from {low:g} to {high:g}, got {raw}")
    return value


def check_port_free(host: str, port: int) -> None:
    """Fail now, before Postgres starts, if the gateway's port cannot be bound (0 always can).

    Binds with ``SO_REUSEADDR`` as ``http.server`` does, so a port in ``TIME_WAIT`` after a
    previous stack counts as free, as it is for the gateway.

    Raises:
        StartupError: the port is in use or not ours to bind; the message names ``PORT``.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"PORT: {host}:{port} is already in use (stop what listens there, or set PORT to another port)"
                ) from None
            raise StartupError(f"PORT: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def held_logs(name: str) -> Iterator[None]:
    """Hold the records logged on logger ``name`` (not its children's) until the block ends.

    They are logged if the block succeeds and dropped if it raises: a character file that
    fails to load gets its one error line, not its conversion notes before it.
    """
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    target = logging.getLogger(name)
    target.addFilter(hold)
    ok = False
    try:
        yield
        ok = True
    finally:
        target.removeFilter(hold)
        for record in held if ok else ():
            logging.getLogger(record.name).handle(record)


def describe_startup_error(exc: BaseException) -> str:
    """One line for an exception raised while starting: what failed, naming the variable or file.

    Our own errors (``StartupError``, ``ConfigurationError``, ``CharacterError``, ``StackBusy``)
    already say it; pydantic's ``ValidationError`` is reduced to its fields; anything else is
    its type and message (``LOG_LEVEL=DEBUG`` shows the traceback).
    """
    from pydantic import ValidationError

    from core.character import CharacterError
    from core.errors import AgentRuntimeError
    from infra.local.state import StackBusy

    if isinstance(exc, ValidationError):
        fields = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()]
        more = f"; and {len(fields) - _MAX_FIELDS} more" if len(fields) > _MAX_FIELDS else ""
        return _one_line(f"invalid {exc.title}: {'; '.join(fields[:_MAX_FIELDS])}{more}")
    if isinstance(exc, StartupError | CharacterError | AgentRuntimeError | StackBusy):
        return _one_line(str(exc))
    if isinstance(exc, subprocess.CalledProcessError):
        return _one_line(
            f"{exc.cmd[0] if isinstance(exc.cmd, list) else exc.cmd} failed (exit status {exc.returncode})"
        )
    if isinstance(exc, ImportError):
        return _one_line(f"a module is missing ({exc}): run `make install`")
    return _one_line(f"{type(exc).__name__}: {exc} (LOG_LEVEL=DEBUG shows the traceback)")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
