"""The database setting: the environment over the config file, checked keys, a password never shown,
the backend chosen by one function, and psycopg never imported without a database URL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aggregator.config import DatabaseSettings, load_database_settings, load_settings
from aggregator.db import address, database_url, open_journal, redact, scrub
from aggregator.errors import ConfigError
from aggregator.journal import SqliteJournal
from tests.postgres import PASSWORD

REPO = Path(__file__).resolve().parents[2]
URL = f"postgresql://app:{PASSWORD}@db.internal:6543/deepsearch"


def test_the_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "user.toml"
    config.write_text('[database]\nurl = "postgresql://file@filehost/filedb"\npool_size = 3\n')
    from_file = load_settings(config, env={})
    assert database_url(from_file.database) == "postgresql://file@filehost/filedb"
    assert from_file.database.pool_size == 3
    both = load_settings(config, env={"DEEPSEARCH_DATABASE_URL": URL})
    assert database_url(both.database) == URL and both.database.pool_size == 3
    light = load_database_settings(config, env={"DEEPSEARCH_DATABASE_URL": URL})
    assert light == both.database  # the commands that only read the journal see the same settings
    assert load_settings(env={}).database.url is None  # nothing set: the SQLite journal, as always
    assert load_settings(env={"DEEPSEARCH_DATABASE_URL": "  "}).database.url is None


def test_the_url_is_a_secret_in_reprs_and_dumps() -> None:
    settings = load_settings(env={"DEEPSEARCH_DATABASE_URL": URL})
    assert PASSWORD not in repr(settings) and PASSWORD not in settings.model_dump_json()


@pytest.mark.parametrize(("toml", "field", "suggestion"), [
    ('[database]\nulr = "postgresql://h/d"\n', "database.ulr", "url"),
    ("[database]\npool_sise = 3\n", "database.pool_sise", "pool_size"),
    ("[databse]\npool_size = 3\n", "databse", "database"),
])
def test_database_keys_get_a_did_you_mean(tmp_path: Path, toml: str, field: str, suggestion: str) -> None:
    config = tmp_path / "user.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert info.value.field == field and f"did you mean {suggestion!r}?" in info.value.problem
    if field.startswith("database."):
        with pytest.raises(ConfigError) as light:
            load_database_settings(config, env={})
        assert light.value.field == field


def test_a_url_that_is_not_postgresql_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"DEEPSEARCH_DATABASE_URL": f"mysql://app:{PASSWORD}@h/d"})
    assert info.value.field == "database.url" and "postgresql://" in info.value.problem
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(("url", "redacted", "where"), [
    (URL, "postgresql://app:***@db.internal:6543/deepsearch", "db.internal:6543/deepsearch"),
    ("postgresql://app@db/deepsearch", "postgresql://app@db/deepsearch", "db:5432/deepsearch"),
    ("postgres://app:p%40ss@h1:5433,h2/d?sslmode=require", "postgres://app:***@h1:5433,h2/d?sslmode=require",
     "h1:5433,h2:5432/d"),
    ("postgresql://h/d?user=app&password=hunter2", "postgresql://h/d?user=app&password=***", "h:5432/d"),
    ("postgresql:///d?host=/run/postgresql", "postgresql:///d?host=/run/postgresql", "/run/postgresql (Unix socket)/d"),
    ("postgresql://[::1]:5433/d", "postgresql://[::1]:5433/d", "[::1]:5433/d"),
])
def test_redact_and_address_never_show_the_password(url: str, redacted: str, where: str) -> None:
    assert redact(url) == redacted
    assert address(url) == where


def test_scrub_removes_the_url_and_its_password_as_written_and_decoded() -> None:
    url = "postgresql://app:p%40ss-w0rd@h/d"
    text = f"failed for {url}: password p@ss-w0rd or p%40ss-w0rd rejected"
    assert scrub(text, url) == "failed for postgresql://app:***@h/d: password *** or *** rejected"


def test_without_a_url_the_journal_is_the_sqlite_file_and_a_file_with_a_url_is_refused(tmp_path: Path) -> None:
    journal = open_journal(DatabaseSettings(), tmp_path / "j.sqlite")
    assert isinstance(journal, SqliteJournal) and journal.path == tmp_path / "j.sqlite"
    with_url = DatabaseSettings.model_validate({"url": URL})
    with pytest.raises(ConfigError) as info:
        open_journal(with_url, tmp_path / "j.sqlite")
    assert info.value.field == "journal" and "give one or the other" in info.value.problem
    assert type(open_journal(with_url)).__name__ == "PostgresJournal"  # nothing connects before open()


def test_the_help_and_a_sqlite_run_never_import_psycopg(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import asyncio, sys
        from datetime import UTC, datetime
        import aggregator.cli
        from aggregator.cli import main
        from aggregator.cli._support import journal_store
        from aggregator.config import load_settings
        from aggregator.models import SearchRequest

        async def journaled(path):
            async with journal_store(load_settings(env={}).database, path) as journal:
                await journal.record_run("run-1", SearchRequest(query="q"), datetime.now(UTC))
                return len(await journal.runs())

        assert asyncio.run(journaled(sys.argv[1])) == 1
        try:
            main(["--help"])
        except SystemExit:
            pass
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("psycopg", "psycopg_pool")))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "j.sqlite")], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_url_without_the_driver_installed_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the postgres extra were not installed
    with pytest.raises(ConfigError) as info:
        open_journal(DatabaseSettings.model_validate({"url": URL}))
    assert "pip install 'deepsearch-aggregator[postgres]'" in info.value.problem


async def test_the_lease_ttl_of_database_settings_reaches_the_coordinator(tmp_path: Path) -> None:
    """A killed worker's job slots come back after ``[database] lease_ttl_s`` (default 30 s)."""
    from aggregator.coordination import coordinator_from_settings
    from aggregator.coordination.postgres import PostgresCoordinator

    config = tmp_path / "db.toml"
    config.write_text(f'[database]\nurl = "{URL}"\nlease_ttl_s = 4.5\n')
    tuned = coordinator_from_settings(load_settings(config, env={}))
    default = coordinator_from_settings(load_settings(env={"DEEPSEARCH_DATABASE_URL": URL}))
    assert isinstance(tuned, PostgresCoordinator) and isinstance(default, PostgresCoordinator)
    assert (tuned.lease_ttl_s, default.lease_ttl_s) == (4.5, 30.0)
    await tuned.aclose()
    await default.aclose()
