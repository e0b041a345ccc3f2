"""Where a local stack keeps its data, and how other processes find the one running on it.

A stack owns its data directory (``LOCAL_DATA_DIR``, default: the project's ``.data``,
resolved from this package's location so that every working directory finds the same one)
through an exclusive ``flock`` on ``<data dir>/stack.lock``. The kernel drops the lock when
the last process holding it ends, ``kill -9`` included, so a held lock means "a stack, or the
watchdog cleaning up after one, is using this directory" and never goes stale. Once it
serves, the stack writes ``<data dir>/stack.json`` (:class:`StackState`: its pid, database
URL, SQS endpoint and queue URLs, gateway URL); it removes the file when it stops, and its
watchdog removes it when the stack dies.

Readers (the ``agent`` command, ``make migrate``) call :func:`running_stack`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: The project's root: this file is ``<root>/infra/local/state.py``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = "stack.lock"
STATE_FILE = "stack.json"


def data_dir() -> Path:
    """The local stack's data directory: ``LOCAL_DATA_DIR`` (relative to the cwd), else ``<project>/.data``."""
    configured = os.environ.get("LOCAL_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else PROJECT_ROOT / ".data"


@dataclass(frozen=True)
class StackState:
    """What a running stack tells other processes (``stack.json``).

    Attributes:
        pid: The stack's process id.
        database_url: libpq URI of its database (a Unix socket under the data directory).
        sqs_endpoint: moto's base URL (``AWS_ENDPOINT_URL_SQS``).
        queue_urls: Embedding queue URLs by priority (``high``, ``normal``, ``low``).
        gateway_url: The HTTP API's base URL.
        started_at: Unix time when it became ready, in seconds.
    """

    pid: int
    database_url: str
    sqs_endpoint: str
    queue_urls: dict[str, str] = field(default_factory=dict)
    gateway_url: str = ""
    started_at: float = 0.0

    def environment(self) -> dict[str, str]:
        """The variables a process sets to use this stack: database, SQS endpoint, queues, local credentials."""
        return {
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL_SQS": self.sqs_endpoint,
            **{f"EMBEDDINGS_{p.upper()}_QUEUE_URL": url for p, url in self.queue_urls.items()},
        }

    def write(self, directory: Path) -> Path:
        """Write ``stack.json`` atomically (a reader never sees half a file); returns its path."""
        path = directory / STATE_FILE
        partial = path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(asdict(self), indent=2))
        partial.replace(path)
        return path

    @classmethod
    def read(cls, directory: Path) -> StackState | None:
        """The state in ``directory``, or ``None`` if there is none or it is unreadable (an older format)."""
        try:
            raw = json.loads((directory / STATE_FILE).read_text())
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None


def remove_state(directory: Path) -> None:
    """Delete ``stack.json`` (the stack has stopped); no error when it is already gone."""
    (directory / STATE_FILE).unlink(missing_ok=True)


class StackBusy(Exception):
    """Another process holds the data directory (a stack runs, starts, or is being cleaned up).

    Attributes:
        directory: The data directory.
        state: The running stack's state, ``None`` while it starts or after it died.
    """

    def __init__(self, directory: Path, state: StackState | None) -> None:
        self.directory = directory
        self.state = state
        if state is not None and pid_alive(state.pid):
            message = f"a local stack is already running on {directory} (pid {state.pid}, {state.gateway_url})"
        else:
            message = f"a local stack is starting or stopping on {directory}: try again in a few seconds"
        super().__init__(message)


class DataDirLock:
    """The exclusive lock that makes one process the owner of a data directory.

    Args:
        directory: The data directory (created if missing).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        """The locked file's descriptor, to hand to a watchdog (``pass_fds``) that keeps it locked.

        Raises:
            RuntimeError: Not acquired.
        """
        if self._fd is None:
            raise RuntimeError("the data directory lock is not held")
        return self._fd

    def acquire(self, wait_s: float = 0.0) -> DataDirLock:
        """Take the lock, waiting up to ``wait_s`` seconds while another process holds it.

        Raises:
            StackBusy: still held after ``wait_s``.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StackBusy(self.directory, StackState.read(self.directory)) from None
                time.sleep(0.1)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (closing our descriptor); safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def is_locked(directory: Path) -> bool:
    """Whether some process holds ``directory``'s lock (without taking it for longer than a probe)."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also releases a lock the probe took
    return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but another user's
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text()
        return status.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def running_stack(directory: Path | None = None) -> StackState | None:
    """The stack serving on ``directory`` (default :func:`data_dir`), if one does.

    A stack serves when the directory's lock is held and ``stack.json`` names a live process.
    (A stack killed with ``kill -9`` leaves its ``stack.json`` until its watchdog removes it:
    the dead pid tells them apart meanwhile.)

    Raises:
        StackBusy: the lock is held but no stack serves yet (starting) or any more (being cleaned up).
    """
    directory = directory or data_dir()
    if not is_locked(directory):
        return None
    state = StackState.read(directory)
    if state is None or not pid_alive(state.pid):
        raise StackBusy(directory, state)
    return state
