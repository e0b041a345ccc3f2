"""Versioned SQL migrations, applied under an advisory lock. Never called on the request path.

Files are ``NNNN_name.sql``: the core schema's in ``core/db/postgres/migrations``, a plugin's in the
folder its ``Plugin.migrations`` names (elizaOS plugins ship a ``schema``). Each file is
applied once, in its own transaction, and recorded with its namespace (``core`` or the
plugin's name) and SHA-256; editing a file that was already applied is an error rather than
a silent drift. The core schema is applied first, then plugins in the order given.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from core.errors import MigrationError

if TYPE_CHECKING:  # annotations only: the storage layer imports no feature package
    from core.plugin import Plugin

logger = logging.getLogger(__name__)

#: Arbitrary but fixed: every migrate run, in any process, serialises on this key.
ADVISORY_LOCK_KEY = 0x6167_656E_7473  # "agents"
CORE_NAMESPACE = "core"
_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file: ``version`` is its 4-digit prefix, ``checksum`` the SHA-256 of its text."""

    version: str
    name: str
    sql: str
    namespace: str = CORE_NAMESPACE

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def core_migrations() -> list[Migration]:
    """The core schema's migrations, in order."""
    folder = resources.files("core.db.postgres.migrations")
    return load_migrations(Path(str(folder)))


def plugin_migrations(plugins: Iterable[Plugin]) -> list[Migration]:
    """The migrations of every plugin that ships some, namespaced by plugin name, in plugin order.

    Raises:
        MigrationError: a plugin's migrations folder does not exist.
    """
    found: list[Migration] = []
    for plugin in plugins:
        if plugin.migrations is None:
            continue
        folder = Path(plugin.migrations)
        if not folder.is_dir():
            raise MigrationError(f"plugin {plugin.name}: migrations folder {folder} does not exist")
        found += load_migrations(folder, namespace=plugin.name)
    return found


def load_migrations(folder: Path, namespace: str = CORE_NAMESPACE) -> list[Migration]:
    """Read ``NNNN_name.sql`` files from ``folder``, sorted by version.

    Raises:
        MigrationError: two files share a version.
    """
    found: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            continue
        version = match.group(1)
        if version in found:
            raise MigrationError(f"two migrations share version {version}: {found[version].name}, {path.name}")
        found[version] = Migration(version=version, name=path.name, sql=path.read_text(), namespace=namespace)
    return [found[v] for v in sorted(found)]


def migrate(database_url: str, migrations: list[Migration] | None = None, plugins: Iterable[Plugin] = ()) -> list[str]:
    """Apply pending migrations.

    Args:
        database_url: libpq URI.
        migrations: What to apply (the core schema by default).
        plugins: Plugins whose own migrations follow (``Plugin.migrations``).

    Returns:
        Names of the migrations applied by this call (empty when up to date).

    Raises:
        MigrationError: an applied file's checksum changed, or a migration failed (its
            transaction is rolled back; earlier ones stay applied).
    """
    todo = (core_migrations() if migrations is None else migrations) + plugin_migrations(plugins)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            return _apply_pending(conn, todo)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def _apply_pending(conn: psycopg.Connection, migrations: list[Migration]) -> list[str]:
    _ensure_ledger(conn)
    applied = {(ns, v): c for ns, v, c in conn.execute("SELECT namespace, version, checksum FROM schema_migrations")}
    done: list[str] = []
    for migration in migrations:
        recorded = applied.get((migration.namespace, migration.version))
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"{migration.namespace}/{migration.name} was edited after it was applied (checksum differs)"
                )
            continue
        try:
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (namespace, version, name, checksum) VALUES (%s, %s, %s, %s)",
                    (migration.namespace, migration.version, migration.name, migration.checksum),
                )
        except psycopg.Error as exc:
            raise MigrationError(f"{migration.name} failed: {exc}") from exc
        logger.info("applied migration %s/%s", migration.namespace, migration.name)
        done.append(
            migration.name if migration.namespace == CORE_NAMESPACE else f"{migration.namespace}/{migration.name}"
        )
    return done


def _ensure_ledger(conn: psycopg.Connection) -> None:
    """The ``schema_migrations`` table, keyed by (namespace, version)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " namespace text NOT NULL DEFAULT 'core', version text NOT NULL, name text NOT NULL,"
        " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (namespace, version))"
    )
    # A ledger from before plugin migrations (keyed by version alone) is upgraded in place.
    conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT 'core'")
    key_columns = conn.execute(
        "SELECT cardinality(conkey) FROM pg_constraint WHERE conrelid = 'schema_migrations'::regclass AND contype = 'p'"
    ).fetchone()
    if key_columns and key_columns[0] == 1:
        conn.execute(
            "ALTER TABLE schema_migrations DROP CONSTRAINT schema_migrations_pkey, ADD PRIMARY KEY (namespace, version)"
        )
