"""Versioned migrations: a fresh database gets every one, again is a no-op, two migrators at once apply
each once; a schema behind or ahead of this version is refused at start-up with what to do."""

from __future__ import annotations

import asyncio

import pytest

from aggregator.db import migrate
from aggregator.db.journal import PostgresJournal
from aggregator.db.pool import connect
from aggregator.errors import DatabaseSchemaError
from tests.postgres import PASSWORD

JOURNAL_TABLES = {"runs", "jobs", "hits", "outcomes"}


async def tables(url: str) -> set[str]:
    async with connect(url) as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {name for (name,) in await cursor.fetchall()}


async def applied_rows(url: str) -> list[tuple[int, str]]:
    async with connect(url) as conn:
        cursor = await conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(int(version), name) for version, name in await cursor.fetchall()]


def test_the_shipped_migrations_are_numbered_from_one_without_a_gap() -> None:
    shipped = migrate.migrations()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    assert shipped[0].name == "journal" and "CREATE TABLE runs" in shipped[0].sql
    assert migrate.required_version() == shipped[-1].version


async def test_a_fresh_database_gets_every_migration_then_none_again(postgres_url: str) -> None:
    async with connect(postgres_url) as conn:
        assert await migrate.current_version(conn) == 0  # no schema_migrations table yet
    applied = await migrate.apply(postgres_url)
    assert [m.version for m in applied] == [m.version for m in migrate.migrations()]
    assert await applied_rows(postgres_url) == [(m.version, m.name) for m in migrate.migrations()]
    assert JOURNAL_TABLES | {"schema_migrations"} <= await tables(postgres_url)
    assert await migrate.apply(postgres_url) == []  # idempotent
    async with connect(postgres_url) as conn:
        assert await migrate.current_version(conn) == migrate.required_version()
        await migrate.check(conn, "here")  # up to date: no error


async def test_two_migrators_at_once_apply_each_migration_once(postgres_url: str) -> None:
    first, second = await asyncio.gather(migrate.apply(postgres_url), migrate.apply(postgres_url))
    versions = sorted(m.version for m in [*first, *second])
    assert versions == [m.version for m in migrate.migrations()]  # each once, by one of them
    assert [] in (first, second)  # the advisory lock: the second found nothing left to do
    assert await applied_rows(postgres_url) == [(m.version, m.name) for m in migrate.migrations()]


async def test_a_database_behind_is_refused_at_start_up_with_the_command_to_run(postgres_url: str) -> None:
    with pytest.raises(DatabaseSchemaError) as empty:
        await PostgresJournal(postgres_url).open()
    required = migrate.required_version()
    assert (empty.value.current, empty.value.required) == (0, required)
    assert f"is at version 0; this deepsearch needs {required}: run `deepsearch db migrate`" in str(empty.value)
    assert empty.value.field == "database" and PASSWORD not in str(empty.value)

    await migrate.apply(postgres_url)
    async with connect(postgres_url) as conn:  # the last migration not applied: one version behind
        await conn.execute("DELETE FROM schema_migrations WHERE version = %s", (required,))
    with pytest.raises(DatabaseSchemaError) as behind:
        await PostgresJournal(postgres_url).open()
    assert (behind.value.current, behind.value.required) == (required - 1, required)
    assert "run `deepsearch db migrate`" in str(behind.value)


async def test_a_database_ahead_is_refused_at_start_up_and_by_migrate(database_url: str) -> None:
    required = migrate.required_version()
    async with connect(database_url) as conn:  # a newer deepsearch migrated it
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'from_the_future')",
                           (required + 1,))
    with pytest.raises(DatabaseSchemaError) as ahead:
        await PostgresJournal(database_url).open()
    assert (ahead.value.current, ahead.value.required) == (required + 1, required)
    assert f"is at version {required + 1}, ahead of this deepsearch" in str(ahead.value)
    assert "upgrade deepsearch-aggregator" in str(ahead.value)
    with pytest.raises(DatabaseSchemaError):
        await migrate.apply(database_url)
    assert (await applied_rows(database_url))[-1] == (required + 1, "from_the_future")  # nothing was applied


def test_the_migration_files_are_package_data_of_the_wheel() -> None:
    """Shipped in the wheel: the package-data patterns of pyproject.toml match every migration file."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["aggregator"]
    files = sorted(p.relative_to(root / "aggregator").as_posix()
                   for p in (root / "aggregator" / "db" / "migrations").glob("*.sql"))
    assert files and all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files)
