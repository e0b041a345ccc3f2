"""A watchdog process that cleans up after a local stack that died without stopping its pieces.

Postgres runs as a daemon of its own (``pg_ctl start`` detaches it), so a stack killed with
``kill -9``, or crashing in native code, would leave it running; a child process of the stack
(the local text model's) could outlive it too. The stack therefore starts this small process
first (``python -m infra.local.watchdog <stack pid>``) and tells it, one line at a time on a
pipe, what to clean up:

* ``postgres <data dir>``: stop the embedded Postgres on that directory (bundled ``pg_ctl``,
  fast mode: open transactions roll back, clients are disconnected);
* ``state <data dir>``: remove the stack's ``stack.json`` there (``infra.local.state``);
* ``done``: the stack has stopped everything itself; exit without doing anything.

The watchdog notices that the stack is gone when the pipe reaches end of file (the kernel
closes the stack's end whatever killed it), or when the stack's pidfd becomes readable, or
when it is re-parented (``getppid`` changes; the fallback without pidfds). Every second it
also records the stack's descendants, so that it can terminate those left behind (``SIGTERM``,
then ``SIGKILL`` after :data:`GRACE_S`). It ignores ``SIGINT``, ``SIGTERM`` and ``SIGHUP``, so
that a Ctrl-C in the terminal, a signal to the whole process group or a closed terminal cannot
kill it before it has cleaned up, and runs in a session of its own, so that a ``SIGKILL`` to
the stack's whole process group spares it. It holds the stack's data directory lock (inherited) until
it exits, so no new stack starts on the directory while it stops the old Postgres.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

logger = logging.getLogger("infra.local.watchdog")

#: Seconds between two records of the stack's descendants.
POLL_S = 1.0
#: Seconds a left-behind process gets between SIGTERM and SIGKILL.
GRACE_S = 3.0
#: Processes never signalled directly: Postgres is stopped with pg_ctl, which waits for its children.
_POSTGRES_NAMES = frozenset({"postgres", "pg_ctl", "postmaster"})


class Watchdog:
    """The stack's side: starts the watchdog and tells it what to clean up.

    Args:
        process: The watchdog process (use :meth:`start`).
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @classmethod
    def start(cls, pass_fds: tuple[int, ...] = ()) -> Watchdog:
        """Start the watchdog of this process.

        Args:
            pass_fds: Descriptors it inherits and keeps open until it exits (the data directory lock).

        Raises:
            OSError: The interpreter cannot be started.
        """
        from infra.local.state import PROJECT_ROOT

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        process = subprocess.Popen(  # stdout/stderr inherited: its few lines go where the stack's go
            [sys.executable, "-m", "infra.local.watchdog", str(os.getpid())],
            stdin=subprocess.PIPE,
            pass_fds=pass_fds,
            env=env,
            close_fds=True,
            start_new_session=True,  # out of the stack's process group: a `kill -9 -<pgid>` spares it
        )
        return cls(process)

    @property
    def pid(self) -> int:
        """The watchdog's process id."""
        return self._process.pid

    def guard_postgres(self, data_dir: Path) -> None:
        """Stop the embedded Postgres on ``data_dir`` if this process dies (say so before starting it)."""
        self._send(f"postgres {data_dir}")

    def guard_state(self, data_dir: Path) -> None:
        """Remove ``data_dir``'s ``stack.json`` if this process dies."""
        self._send(f"state {data_dir}")

    def dismiss(self, timeout_s: float = 5.0) -> None:
        """Everything is stopped: let the watchdog exit without cleaning, and wait for it; safe to call twice."""
        if self._process.poll() is None:
            self._send("done")
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # type: ignore[union-attr]
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("the watchdog (pid %d) did not exit; killing it", self._process.pid)
                self._process.kill()
                self._process.wait()

    def _send(self, line: str) -> None:
        try:
            self._process.stdin.write(f"{line}\n".encode())  # type: ignore[union-attr]
            self._process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):  # ValueError: stdin already closed by dismiss()
            logger.warning("the watchdog (pid %d) is gone: nothing will clean up after a crash", self._process.pid)


# -- the watchdog process -------------------------------------------------------------------


class _Guard:
    """What the watchdog knows: the stack's pid, what to clean, its descendants seen so far."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.postgres: list[Path] = []
        self.state: list[Path] = []
        self.done = False
        self.descendants: dict[int, float] = {}  # pid -> create time (a reused pid is not the same process)

    def command(self, line: str) -> None:
        verb, _, arg = line.strip().partition(" ")
        if verb == "postgres":
            self.postgres.append(Path(arg))
        elif verb == "state":
            self.state.append(Path(arg))
        elif verb == "done":
            self.done = True
        elif verb:
            logger.warning("watchdog: unknown command %r", verb)

    def record_descendants(self) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.parent).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.pid != os.getpid() and child.name() not in _POSTGRES_NAMES:
                        self.descendants.setdefault(child.pid, child.create_time())

    def clean_up(self) -> None:
        """The stack died: terminate its leftovers, stop its Postgres, remove its state."""
        leftovers = self._signal_leftovers(signal.SIGTERM)
        for data_dir in self.postgres:
            _stop_postgres(data_dir)
        for data_dir in self.state:
            with contextlib.suppress(OSError):
                (data_dir / "stack.json").unlink(missing_ok=True)
        if leftovers:
            _wait_gone(leftovers, GRACE_S)
            self._signal_leftovers(signal.SIGKILL)

    def _signal_leftovers(self, sig: signal.Signals) -> list[int]:
        import psutil

        signalled = []
        for pid, created in self.descendants.items():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    process.send_signal(sig)
                    signalled.append(pid)
                    logger.warning("watchdog: sent %s to pid %d (%s), left by the stack", sig.name, pid, process.name())
        return signalled


def _stop_postgres(data_dir: Path) -> None:
    from infra.local.postgres import stop_embedded_postgres

    try:
        if stop_embedded_postgres(data_dir):
            logger.warning("watchdog: the stack is gone; stopped its Postgres on %s", data_dir)
    except Exception as exc:  # pg_ctl failed or timed out: last resort, immediate mode (crash-safe, WAL replays)
        logger.warning("watchdog: pg_ctl stop failed on %s (%s); stopping in immediate mode", data_dir, exc)
        with contextlib.suppress(Exception):
            stop_embedded_postgres(data_dir, mode="immediate")


def _wait_gone(pids: list[int], timeout_s: float) -> None:
    import psutil

    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    psutil.wait_procs(processes, timeout=timeout_s)


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfds (kernel < 5.3), or the parent is already gone
        return None


def watch(parent: int, commands: IO[bytes]) -> int:
    """Run the watchdog of ``parent`` until it is dismissed or has cleaned up; returns the exit status.

    Args:
        parent: The stack's pid.
        commands: The pipe from the stack (its end of file means the stack is gone).
    """
    guard = _Guard(parent)
    pidfd = _open_pidfd(parent)
    fd = commands.fileno()
    pending = b""
    while True:
        guard.record_descendants()
        watched = [fd] if pidfd is None else [fd, pidfd]
        readable, _, _ = select.select(watched, [], [], POLL_S)
        if fd in readable:
            chunk = os.read(fd, 4096)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                guard.command(line.decode(errors="replace"))
            if guard.done:
                return 0
            if not chunk:
                break
        if (pidfd is not None and pidfd in readable) or os.getppid() != parent:
            break
    guard.clean_up()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.local.watchdog <stack pid>``: the watchdog process (see the module docstring)."""
    args = sys.argv[1:] if argv is None else argv
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    try:
        return watch(int(args[0]), sys.stdin.buffer)
    except OSError:  # e.g. stderr is a closed terminal: nothing left to tell
        return 1


if __name__ == "__main__":
    sys.exit(main())
