from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from core.db.migrations import core_migrations, load_migrations, migrate
from core.errors import MigrationError


@pytest.fixture
def scratch_db(postgres, request):
    name = f"mig_{request.node.name.lower()[:40]}"
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    postgres.create_database(name)
    return postgres.database_url(name)


def _write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql)


def test_core_migrations_apply_once_and_record_checksums(scratch_db):
    assert migrate(scratch_db) == [m.name for m in core_migrations()]
    assert migrate(scratch_db) == []
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.checksum) for m in core_migrations()]
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()


def test_an_edited_applied_migration_is_refused(scratch_db, tmp_path):
    _write(tmp_path, "0001_one.sql", "CREATE TABLE one (id int);")
    migrate(scratch_db, load_migrations(tmp_path))
    _write(tmp_path, "0001_one.sql", "CREATE TABLE one (id bigint);")
    with pytest.raises(MigrationError, match="edited"):
        migrate(scratch_db, load_migrations(tmp_path))


def test_a_failing_migration_rolls_back_alone(scratch_db, tmp_path):
    _write(tmp_path, "0001_ok.sql", "CREATE TABLE ok (id int);")
    _write(tmp_path, "0002_bad.sql", "CREATE TABLE bad (id int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match="0002_bad.sql"):
        migrate(scratch_db, load_migrations(tmp_path))
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('ok'), to_regclass('bad')").fetchone() == ("ok", None)
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == ["0001"]


def test_duplicate_versions_are_refused(tmp_path):
    _write(tmp_path, "0001_a.sql", "SELECT 1;")
    _write(tmp_path, "0001_b.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="share version 0001"):
        load_migrations(tmp_path)


def test_concurrent_runs_apply_each_migration_once(scratch_db):
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(scratch_db))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, len(core_migrations())]


def test_plugin_migrations_are_namespaced_and_applied_after_core(scratch_db, tmp_path):
    from core.plugin import Plugin

    core_dir, plugin_dir = tmp_path / "core", tmp_path / "plugin"
    core_dir.mkdir()
    plugin_dir.mkdir()
    _write(core_dir, "0001_base.sql", "CREATE TABLE base (id int PRIMARY KEY);")
    # Same version number as the core file, and it depends on the core table: order matters.
    _write(plugin_dir, "0001_notes.sql", "CREATE TABLE notes (base_id int REFERENCES base (id));")
    plugin = Plugin(name="notes", migrations=str(plugin_dir))

    applied = migrate(scratch_db, load_migrations(core_dir), plugins=[plugin])
    assert applied == ["0001_base.sql", "notes/0001_notes.sql"]
    assert migrate(scratch_db, load_migrations(core_dir), plugins=[plugin]) == []
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("SELECT namespace, version FROM schema_migrations ORDER BY namespace").fetchall()
    assert rows == [("core", "0001"), ("notes", "0001")]

    _write(plugin_dir, "0001_notes.sql", "CREATE TABLE notes (id bigint);")
    with pytest.raises(MigrationError, match="notes/0001_notes.sql was edited"):
        migrate(scratch_db, load_migrations(core_dir), plugins=[plugin])


def test_a_missing_plugin_migrations_folder_is_an_error(scratch_db, tmp_path):
    from core.plugin import Plugin

    with pytest.raises(MigrationError, match="ghost"):
        migrate(scratch_db, plugins=[Plugin(name="ghost", migrations=str(tmp_path / "nope"))])


def test_a_ledger_keyed_by_version_alone_is_upgraded(scratch_db):
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version text PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    assert migrate(scratch_db) == [m.name for m in core_migrations()]
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT count(DISTINCT namespace) FROM schema_migrations").fetchone() == (1,)
