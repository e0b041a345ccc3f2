"""Versioned SQL migrations, applied under an advisory lock. Never called on the request path.

Files are ``NNNN_name.sql`` in ``infra/migrations`` (the core schema). Each is applied once,
in its own transaction, and recorded with its SHA-256; editing a file that was already
applied is an error rather than a silent drift.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

from core.errors import MigrationError

logger = logging.getLogger(__name__)

#: Arbitrary but fixed: every migrate run, in any process, serialises on this key.
ADVISORY_LOCK_KEY = 0x6167_656E_7473  # "agents"
_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file: ``version`` is its 4-digit prefix, ``checksum`` the SHA-256 of its text."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def core_migrations() -> list[Migration]:
    """The core schema's migrations, in order."""
    folder = resources.files("infra.migrations")
    return load_migrations(Path(str(folder)))


def load_migrations(folder: Path) -> list[Migration]:
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
        found[version] = Migration(version=version, name=path.name, sql=path.read_text())
    return [found[v] for v in sorted(found)]


def migrate(database_url: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations.

    Args:
        database_url: libpq URI.
        migrations: What to apply (the core schema by default).

    Returns:
        Names of the migrations applied by this call (empty when up to date).

    Raises:
        MigrationError: an applied file's checksum changed, or a migration failed (its
            transaction is rolled back; earlier ones stay applied).
    """
    todo = core_migrations() if migrations is None else migrations
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            return _apply_pending(conn, todo)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def _apply_pending(conn: psycopg.Connection, migrations: list[Migration]) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(f"{migration.name} was edited after it was applied (checksum differs)")
            continue
        try:
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
        except psycopg.Error as exc:
            raise MigrationError(f"{migration.name} failed: {exc}") from exc
        logger.info("applied migration %s", migration.name)
        done.append(migration.name)
    return done
