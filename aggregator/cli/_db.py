"""``deepsearch db migrate`` and ``db status``: the schema of the optional PostgreSQL database.

The database is the one ``DEEPSEARCH_DATABASE_URL`` (or ``[database] url`` in the config) names;
without one there is nothing to migrate (the SQLite journal needs none) and both commands say so
(exit 2). URLs are shown with the password as ``***``. Exit codes: 0 done / up to date, 2 no database,
unreachable, or (``status``) a schema that is not this version's.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import orjson

from aggregator.cli._support import usage_error
from aggregator.config import DatabaseSettings, load_database_settings
from aggregator.db import address, database_url, redact, require_driver
from aggregator.errors import ConfigError

__all__ = ["db_group"]


def _database(config: str | None) -> tuple[DatabaseSettings, str]:
    """The configured database and its URL; a usage error (exit 2) without one or without the driver."""
    try:
        database = load_database_settings(config)
        url = database_url(database)
        if url is None:
            raise ConfigError("database.url", "no database is configured: set DEEPSEARCH_DATABASE_URL (or "
                                              "[database] url in the config) to a postgresql:// URL; without one "
                                              "the journal is the local SQLite file, which needs no migration")
        require_driver()
    except ConfigError as exc:
        usage_error(exc)
        raise  # not reached: a usage error exits
    return database, url


config_option = click.option("--config", type=click.Path(dir_okay=False),
                             help="A TOML file whose [database] table names the database.")


@click.group("db")
def db_group() -> None:
    """The optional PostgreSQL database (DEEPSEARCH_DATABASE_URL): schema migrations and status."""


@db_group.command("migrate")
@config_option
def migrate_command(config: str | None) -> None:
    """Apply the pending schema migrations.

    In order, each in one transaction. Safe to run from several processes at once (an advisory lock
    serializes them); prints each version applied, or that the schema is up to date."""
    from aggregator.db import migrate

    database, url = _database(config)
    try:
        applied = asyncio.run(migrate.apply(database))
    except ConfigError as exc:  # unreachable, or the database is ahead of this deepsearch
        usage_error(exc)
        raise  # not reached: a usage error exits
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    state = "migrated to" if applied else "up to date at"
    click.echo(f"{address(url)}: {state} schema version {migrate.required_version()}")


@db_group.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
def status_command(config: str | None, as_json: bool) -> None:
    """Show the schema version: the database's and the one needed.

    Exits 2 when they differ (behind: run `deepsearch db migrate`; ahead: upgrade deepsearch)."""
    from aggregator.db import migrate
    from aggregator.db.pool import connect

    database, url = _database(config)

    async def versions() -> int:
        async with connect(database) as conn:
            return await migrate.current_version(conn)

    try:
        current = asyncio.run(versions())
    except ConfigError as exc:  # unreachable
        usage_error(exc)
        raise  # not reached: a usage error exits
    required = migrate.required_version()
    pending = [f"{m.version:04d}_{m.name}" for m in migrate.migrations() if m.version > current]
    if as_json:
        status: dict[str, Any] = {"database": redact(url), "current_version": current,
                                  "required_version": required, "pending": pending}
        sys.stdout.buffer.write(orjson.dumps(status, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        click.echo(f"database: {redact(url)}")
        click.echo(f"schema version: {current} (this deepsearch needs {required})")
        if pending:
            click.echo(f"pending: {', '.join(pending)}")
    if current < required:
        click.echo("error: the schema is behind: run `deepsearch db migrate`", err=True)
        sys.exit(2)
    if current > required:
        click.echo("error: the schema is ahead of this deepsearch (a newer one migrated it): upgrade "
                   "deepsearch-aggregator", err=True)
        sys.exit(2)
