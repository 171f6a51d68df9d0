"""Connections to the PostgreSQL backend: one at a time (:func:`connect`) or pooled (:func:`open_pool`).

Both translate the driver's failures to reach the server into
:class:`~aggregator.errors.DatabaseUnavailableError` (naming ``host:port/database``, never the
password), at start-up and later (:func:`unavailable_as_error`): fail closed, never guess.
Connections read ``json``/``jsonb`` columns as text (the journal parses its own documents).

psycopg is imported here, so this module is imported only when a database URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from aggregator.config import DatabaseSettings
from aggregator.db.settings import address, database_url, scrub
from aggregator.errors import ConfigError, DatabaseUnavailableError

__all__ = ["connect", "open_pool", "target", "unavailable_as_error"]

UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
"""SQLSTATE prefixes of a server that is gone or will not serve: connection exceptions (class 08),
shutdowns (57P01-03) and too many connections (53300). Client-side failures have no SQLSTATE."""


def target(database: DatabaseSettings | str) -> tuple[str, DatabaseSettings]:
    """The URL (with its password, for the driver only) and the settings of ``database``.

    Raises:
        ConfigError: no URL is set (``database.url``).
    """
    settings = DatabaseSettings.model_validate({"url": database}) if isinstance(database, str) else database
    url = database_url(settings)
    if url is None:
        raise ConfigError("database.url", "no database is configured: set DEEPSEARCH_DATABASE_URL "
                                          "(or [database] url) to a postgresql:// URL")
    return url, settings


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError | TimeoutError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith(UNAVAILABLE_STATES)
    return False


def _reason(exc: BaseException, url: str, timeout_s: float) -> str:
    if isinstance(exc, PoolTimeout | TimeoutError):
        return f"no connection within {timeout_s:g} s"
    text = " ".join(str(exc).split()) or type(exc).__name__  # libpq's message is multi-line
    return scrub(text.removeprefix("connection failed: "), url)


@contextlib.contextmanager
def unavailable_as_error(url: str, timeout_s: float) -> Iterator[None]:
    """Raise :class:`~aggregator.errors.DatabaseUnavailableError` for a server that cannot be reached,
    refused the connection or went away (other database errors pass through). The driver's message is
    kept with the password removed; its exception is not chained (its text is already in the reason)."""
    try:
        yield
    except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
        if not _unavailable(exc):
            raise
        raise DatabaseUnavailableError(address(url), _reason(exc, url, timeout_s)) from None


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Read ``json`` and ``jsonb`` as text: the journal parses its documents itself (as from SQLite)."""
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)


def _connect_timeout(settings: DatabaseSettings) -> int:
    return max(2, math.ceil(settings.connect_timeout_s))  # libpq's connect_timeout: whole seconds, at least 2


@contextlib.asynccontextmanager
async def connect(database: DatabaseSettings | str, *,
                  autocommit: bool = True) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One connection to ``database`` (settings or a URL), closed when the block ends.

    Raises:
        ConfigError: no URL is configured.
        DatabaseUnavailableError: the server cannot be reached or refused the connection within
            ``connect_timeout_s`` (real seconds), or went away while the block ran.
    """
    url, settings = target(database)
    timeout_s = settings.connect_timeout_s
    with unavailable_as_error(url, timeout_s):
        async with asyncio.timeout(timeout_s + 1):
            conn = await psycopg.AsyncConnection.connect(url, autocommit=autocommit,
                                                         connect_timeout=_connect_timeout(settings))
    try:
        await _configure(conn)
        with unavailable_as_error(url, timeout_s):
            yield conn
    finally:
        with contextlib.suppress(psycopg.Error):
            await conn.close()


async def open_pool(database: DatabaseSettings | str, *, check_schema: bool = True) -> AsyncConnectionPool:
    """A connection pool to ``database`` (at most ``pool_size`` connections), opened; close it with
    ``await pool.close()``. One connection is made first, so an unreachable server or (with
    ``check_schema``) a schema that is not this version's is reported before anything runs.
    Pooled connections are checked before use, so a restarted server is reconnected to.

    Raises:
        ConfigError: no URL is configured.
        DatabaseUnavailableError: the server cannot be reached within ``connect_timeout_s``.
        DatabaseSchemaError: ``check_schema`` and the schema is behind or ahead of
            :func:`aggregator.db.migrate.required_version`.
    """
    from aggregator.db import migrate

    url, settings = target(database)
    async with connect(settings) as conn:
        if check_schema:
            await migrate.check(conn, address(url))
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url, min_size=1, max_size=settings.pool_size, open=False, timeout=settings.connect_timeout_s,
        kwargs={"connect_timeout": _connect_timeout(settings)}, configure=_configure,
        check=AsyncConnectionPool.check_connection, name="deepsearch")
    with unavailable_as_error(url, settings.connect_timeout_s):
        await pool.open(wait=True, timeout=settings.connect_timeout_s)
    return pool
