"""The optional PostgreSQL backend: the journal (and, in :mod:`aggregator.coordination`, rate limits,
leases and budgets) in one database that many processes share.

``DEEPSEARCH_DATABASE_URL`` (or ``[database] url``) switches it on; without it the journal is the
embedded SQLite file and nothing here imports the driver. It needs the ``postgres`` extra
(``pip install 'deepsearch-aggregator[postgres]'``: psycopg 3 and psycopg-pool).

- :func:`open_journal`: the journal the settings select (used by the CLI);
- :mod:`aggregator.db.migrate`: versioned schema migrations (``deepsearch db migrate``), checked at start-up;
- :mod:`aggregator.db.pool`: connections and pools, with unreachable servers as typed errors;
- :mod:`aggregator.db.settings`: the URL, and :func:`redact` / :func:`address` to name it without its password.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aggregator.config import DatabaseSettings
from aggregator.db.settings import address, database_url, redact, scrub
from aggregator.errors import ConfigError

if TYPE_CHECKING:
    from aggregator.journal import BufferedJournal

__all__ = ["DatabaseSettings", "address", "database_url", "open_journal", "redact", "require_driver", "scrub"]


def require_driver() -> None:
    """Make sure psycopg 3 and psycopg-pool are installed.

    Raises:
        ConfigError: naming the extra to install (``database.url`` is set but the driver is missing).
    """
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigError("database.url", "a PostgreSQL database is configured, but its driver is not "
                                          "installed: pip install 'deepsearch-aggregator[postgres]'") from exc


def open_journal(database: DatabaseSettings, path: str | os.PathLike[str] | None = None,
                 **options: Any) -> BufferedJournal:
    """The journal ``database`` selects, not opened yet (``async with open_journal(...) as journal``):
    a :class:`~aggregator.db.journal.PostgresJournal` when a URL is set (opening it checks that the
    server is reachable and the schema is this version's), else a
    :class:`~aggregator.journal.SqliteJournal` at ``path`` (default
    :func:`~aggregator.journal.default_journal_path`). ``options`` (``flush_interval_s``,
    ``max_buffered_hits``, ``now``) go to the journal.

    Raises:
        ConfigError: ``path`` is given while a database URL is set (one journal or the other), or the
            driver is not installed. Opening raises the errors of
            :class:`~aggregator.db.journal.PostgresJournal`.
    """
    if database.url is None:
        from aggregator.journal import SqliteJournal, default_journal_path

        return SqliteJournal(path if path is not None else default_journal_path(), **options)
    if path is not None:
        raise ConfigError("journal", "a journal file was given, but a PostgreSQL database is configured "
                                     "(DEEPSEARCH_DATABASE_URL or [database] url) and holds the journal: "
                                     "give one or the other")
    require_driver()
    from aggregator.db.journal import PostgresJournal

    return PostgresJournal(database, **options)
