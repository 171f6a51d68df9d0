"""Versioned schema migrations of the PostgreSQL backend.

Migrations are the package files ``aggregator/db/migrations/NNNN_name.sql`` (0001, 0002... with no
gap), applied in order by :func:`apply` (``deepsearch db migrate``), each in one transaction that also
records it in ``schema_migrations(version, name, applied_at)``. Migrating holds a PostgreSQL advisory
lock, so two processes migrating at once apply each migration once (the second waits, then finds
nothing to do). The schema's version is the highest version applied.

Every process that uses the database checks the version at start-up (:func:`check`): one behind the
code's (:func:`required_version`) asks for ``deepsearch db migrate``; one ahead (a newer deepsearch
migrated it) asks for an upgrade. Nothing migrates implicitly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from aggregator.config import DatabaseSettings
from aggregator.errors import DatabaseSchemaError

if TYPE_CHECKING:
    import psycopg

__all__ = ["LOCK_KEY", "Migration", "apply", "check", "current_version", "migrations", "required_version"]

log = logging.getLogger(__name__)

LOCK_KEY = int.from_bytes(b"dsmigrat", "big") >> 1
"""The advisory lock (a bigint) held while migrating."""

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration: ``version`` (1, 2...), ``name`` (``journal``) and its SQL."""

    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this version, in order.

    Raises:
        RuntimeError: a file is misnamed or versions have a gap (a broken build).
    """
    folder = resources.files("aggregator.db").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if match is None:
            raise RuntimeError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1, 2, 3... without a gap: {[m.version for m in found]}")
    return tuple(found)


def required_version() -> int:
    """The schema version this deepsearch needs: its last migration's."""
    return migrations()[-1].version


async def _applied(conn: psycopg.AsyncConnection[Any]) -> set[int]:
    cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return set()
    cursor = await conn.execute("SELECT version FROM schema_migrations")
    return {int(version) for (version,) in await cursor.fetchall()}


async def current_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The database's schema version: the highest migration applied (0 for an empty database)."""
    return max(await _applied(conn), default=0)


async def check(conn: psycopg.AsyncConnection[Any], address: str) -> None:
    """Make sure the schema is the one this deepsearch needs (:func:`required_version`).

    Raises:
        DatabaseSchemaError: behind ("run `deepsearch db migrate`") or ahead ("upgrade deepsearch"),
            naming ``address`` and both versions.
    """
    current, required = await current_version(conn), required_version()
    if current != required:
        raise DatabaseSchemaError(address, current, required)


async def apply(database: DatabaseSettings | str) -> list[Migration]:
    """Apply the pending migrations to ``database`` (settings or a URL), in order, each in one
    transaction, under the advisory lock :data:`LOCK_KEY`. Returns those applied (``[]``: up to date).

    Raises:
        ConfigError: no URL is configured.
        DatabaseUnavailableError: the server cannot be reached (nothing was applied), or went away
            (the migrations committed before stay applied; run it again).
        DatabaseSchemaError: the database is ahead of this deepsearch (nothing is applied).
    """
    from aggregator.db.pool import connect, target
    from aggregator.db.settings import address

    url, _ = target(database)
    async with connect(database) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            await conn.execute(_BOOTSTRAP)
            done = await _applied(conn)
            if max(done, default=0) > required_version():
                raise DatabaseSchemaError(address(url), max(done), required_version())
            applied = []
            for migration in migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())  # several statements: no parameters
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                       (migration.version, migration.name))
                log.info("db.migrated version=%d name=%s", migration.version, migration.name)
                applied.append(migration)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
