"""Embedded Postgres: start under /tmp, create a database, use pgvector, stop."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from infra.local.postgres import start_embedded_postgres, stop_embedded_postgres


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pg") / "data"
    # As root the wheel makes every parent of the data dir world-traversable: never $HOME.
    assert path.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert not path.resolve().is_relative_to(Path.home().resolve())
    return path


def test_start_create_database_vector_and_stop(data_dir: Path) -> None:
    pg = start_embedded_postgres(data_dir)
    try:
        assert pg.uri.startswith("postgresql://postgres:@/postgres?host=")
        assert pg.create_database("agent_test") is True
        assert pg.create_database("agent_test") is False  # idempotent
        with psycopg.connect(pg.database_url("agent_test")) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            (vector,) = conn.execute("SELECT '[1,2,3]'::vector").fetchone()
            (distance,) = conn.execute("SELECT '[1,0]'::vector <-> '[0,0]'::vector").fetchone()
            (database,) = conn.execute("SELECT current_database()").fetchone()
        assert str(vector) == "[1,2,3]"
        assert distance == pytest.approx(1.0)
        assert database == "agent_test"
    finally:
        pg.stop()

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.uri, connect_timeout=2)
    assert stop_embedded_postgres(data_dir) is False  # nothing left running


def test_restart_keeps_the_data(data_dir: Path) -> None:
    first = start_embedded_postgres(data_dir)
    first.create_database("restart_test")
    with psycopg.connect(first.database_url("restart_test")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS marker (id int)")
    first.stop()

    second = start_embedded_postgres(data_dir)
    try:
        assert second.create_database("restart_test") is False
        with psycopg.connect(second.database_url("restart_test")) as conn:
            (table,) = conn.execute("SELECT to_regclass('marker')::text").fetchone()
        assert table == "marker"
    finally:
        assert stop_embedded_postgres(data_dir) is True


def test_stop_ignores_a_pid_file_whose_pid_is_not_a_postgres(tmp_path: Path) -> None:
    """After a crash, postmaster.pid may name a dead pid or one reused by another process: nothing to stop."""
    import os
    import subprocess
    import sys

    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    for pid in (os.getpid(), dead):  # this (python) process; a process that has exited
        (tmp_path / "postmaster.pid").write_text(f"{pid}\n{tmp_path}\n")
        assert stop_embedded_postgres(tmp_path) is False
