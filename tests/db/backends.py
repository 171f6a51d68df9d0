"""The two journal backends, as tests open them: a SQLite file or a migrated PostgreSQL database.

:func:`migrated_database` gives a fresh database with every migration applied: a copy of a template
database migrated once per cluster (``CREATE DATABASE ... TEMPLATE``), so each test starts from the
current schema without re-running the migrations.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from aggregator.journal import BufferedJournal, SqliteJournal
from tests.postgres import Cluster

__all__ = ["JournalBackend", "backend_for", "migrated_database"]

_TEMPLATES: dict[int, str] = {}  # id(cluster) -> its migrated template database


def _template(cluster: Cluster) -> str:
    name = _TEMPLATES.get(id(cluster))
    if name is None:
        from aggregator.db import migrate

        name = f"tmpl_{uuid.uuid4().hex[:12]}"
        cluster.psql(f'CREATE DATABASE "{name}"')
        with ThreadPoolExecutor(1) as thread:  # its own event loop, also when called from a running one
            thread.submit(asyncio.run, migrate.apply(cluster.url(name))).result()
        _TEMPLATES[id(cluster)] = name
    return name


def migrated_database(cluster: Cluster) -> str:
    """The URL of a fresh database of ``cluster`` holding the current schema (every migration applied)."""
    template = _template(cluster)
    name = f"t_{uuid.uuid4().hex[:16]}"
    cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    cluster.databases.append(name)
    return cluster.url(name)


@dataclass(frozen=True)
class JournalBackend:
    """Where a journal lives (``target``: a file path or a database URL); each :meth:`journal` is a new
    journal on it (as another process would open it)."""

    kind: str  # "sqlite" | "postgres"
    target: str

    def journal(self, **options: Any) -> BufferedJournal:
        if self.kind == "sqlite":
            return SqliteJournal(self.target, **options)
        from aggregator.db.journal import PostgresJournal

        return PostgresJournal(self.target, **options)

    @property
    def placeholder(self) -> str:
        return "?" if self.kind == "sqlite" else "%s"

    @property
    def sql_error(self) -> type[Exception]:
        """What the driver raises for a statement on a missing table."""
        if self.kind == "sqlite":
            import sqlite3

            return sqlite3.OperationalError
        import psycopg

        return psycopg.errors.UndefinedTable


def backend_for(request: pytest.FixtureRequest, kind: str, tmp_path: Any) -> JournalBackend:
    """The backend ``kind`` for a test: a file under ``tmp_path``, or a migrated database of the session's
    cluster (started only by tests that ask for PostgreSQL)."""
    if kind == "sqlite":
        return JournalBackend("sqlite", str(tmp_path / "journal.sqlite"))
    return JournalBackend("postgres", migrated_database(request.getfixturevalue("postgres")))
