"""``deepsearch`` with ``DEEPSEARCH_DATABASE_URL``, as a user runs it (subprocesses): ``db migrate`` and
``db status``, a search recorded in PostgreSQL and read back by ``runs`` and ``show``, and the refusals
(no database, a schema behind, an unreachable server, ``--journal`` with a database): exit 2, the host
named, the password never printed."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
from click.testing import CliRunner, Result

from aggregator.cli import main
from aggregator.db import address, migrate, redact
from aggregator.db.pool import connect
from tests.db.cli import deepsearch, deepsearch_async
from tests.postgres import PASSWORD, Cluster

DEMO = "VP of Engineering at Series B SaaS startups in New York"


def in_process(*args: str, database_url: str) -> Result:
    """A command that only reads the journal (``runs``, ``show``), run in this process with the database URL
    set (it configures no logging, so nothing here outlives it)."""
    return CliRunner().invoke(main, list(args), env={"DEEPSEARCH_DATABASE_URL": database_url,
                                                     "DEEPSEARCH_CONFIG": None}, catch_exceptions=False)


def test_db_migrate_from_two_processes_at_once_applies_each_version_once(postgres_url: str, tmp_path: Path) -> None:
    both = [deepsearch_async("db", "migrate", tmp_path=tmp_path, database_url=postgres_url) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in both]
    assert [process.returncode for process in both] == [0, 0], [err for _, err in outputs]
    shipped = [f"applied {m.version:04d}_{m.name}" for m in migrate.migrations()]
    applied = sorted(line for out, _ in outputs for line in out.splitlines() if line.startswith("applied "))
    assert applied == sorted(shipped)  # each version once, by one of the two
    where, version = address(postgres_url), migrate.required_version()
    assert {out.splitlines()[-1] for out, _ in outputs} == {f"{where}: migrated to schema version {version}",
                                                             f"{where}: up to date at schema version {version}"}

    status = deepsearch("db", "status", "--json", tmp_path=tmp_path, database_url=postgres_url)
    assert status.returncode == 0, status.stderr
    assert orjson.loads(status.stdout) == {"database": redact(postgres_url), "current_version": version,
                                           "required_version": version, "pending": []}
    for out, err in [*outputs, (status.stdout, status.stderr)]:
        assert PASSWORD not in out + err


def test_db_status_of_an_empty_database_lists_the_pending_migrations_and_exits_2(postgres_url: str,
                                                                                  tmp_path: Path) -> None:
    status = deepsearch("db", "status", tmp_path=tmp_path, database_url=postgres_url)
    assert status.returncode == 2
    assert f"schema version: 0 (this deepsearch needs {migrate.required_version()})" in status.stdout
    assert "pending: 0001_journal" in status.stdout and "run `deepsearch db migrate`" in status.stderr
    assert "***@127.0.0.1" in status.stdout and PASSWORD not in status.stdout + status.stderr


def test_db_migrate_without_a_database_says_how_to_set_one(tmp_path: Path) -> None:
    done = deepsearch("db", "migrate", tmp_path=tmp_path, database_url=None)
    assert done.returncode == 2
    assert "no database is configured: set DEEPSEARCH_DATABASE_URL" in done.stderr


async def recorded_runs(url: str) -> list[tuple[str, str]]:
    async with connect(url) as conn:
        cursor = await conn.execute("SELECT run_id, status FROM runs")
        return [(run_id, status) for run_id, status in await cursor.fetchall()]


def test_a_search_with_a_database_url_is_journaled_in_postgres_and_read_back_by_runs_and_show(
        database_url: str, tmp_path: Path) -> None:
    search = deepsearch("search", DEMO, "--provider", "sixtyfour", "--max-results", "10", "--json", "--no-progress",
                        tmp_path=tmp_path, database_url=database_url)
    assert search.returncode == 0, search.stderr
    report = orjson.loads(search.stdout)
    assert asyncio.run(recorded_runs(database_url)) == [(report["run_id"], "done")]
    assert not (tmp_path / "journal.sqlite").exists()  # the SQLite journal was not used

    runs = in_process("runs", "--json", database_url=database_url)
    assert runs.exit_code == 0, runs.output
    (listed,) = orjson.loads(runs.stdout)
    assert (listed["run_id"], listed["status"], listed["query"]) == (report["run_id"], "done", DEMO)
    assert listed["records"] == len(report["records"]) and listed["records_final"] is True
    table = in_process("runs", database_url=database_url)
    assert "Runs in" in table.stdout and redact(database_url).split("@")[0] in table.stdout

    show = in_process("show", listed["short_id"], "--json", database_url=database_url)
    assert show.exit_code == 0, show.output
    assert orjson.loads(show.stdout) == report
    assert PASSWORD not in search.stdout + search.stderr + runs.output + table.output + show.output


def test_a_search_on_a_database_not_migrated_is_refused_before_anything_runs(postgres_url: str,
                                                                              tmp_path: Path) -> None:
    search = deepsearch("search", DEMO, "--provider", "sixtyfour", "--no-progress", tmp_path=tmp_path,
                        database_url=postgres_url)
    assert search.returncode == 2 and search.stdout == ""
    assert (f"error: database: the database schema at 127.0.0.1:{postgres_url.split(':')[-1]} is at version 0; "
            f"this deepsearch needs {migrate.required_version()}: run `deepsearch db migrate`") in search.stderr
    assert "Running on the sandbox" not in search.stderr  # refused before the sandbox started


def test_an_unreachable_database_fails_every_command_with_exit_2_naming_the_host_not_the_password(
        postgres: Cluster, database_url: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wrong = database_url.replace(f":{postgres.port}/", f":{port}/")
    where = f"127.0.0.1:{port}/{database_url.rsplit('/', 1)[1]}"
    for args in (("search", DEMO, "--provider", "sixtyfour", "--no-progress", "-vv"), ("resume", "abcd1234")):
        done = deepsearch(*args, tmp_path=tmp_path, database_url=wrong)
        assert done.returncode == 2, (args, done.stderr)
        assert f"cannot use the PostgreSQL database at {where}" in done.stderr, (args, done.stderr)
        assert "Connection refused" in done.stderr and PASSWORD not in done.stdout + done.stderr
    runs = in_process("runs", database_url=wrong)
    assert runs.exit_code == 2 and PASSWORD not in runs.output


def test_a_journal_file_and_a_database_url_together_are_refused(database_url: str, tmp_path: Path) -> None:
    done = deepsearch("runs", "--journal", str(tmp_path / "other.sqlite"), tmp_path=tmp_path,
                      database_url=database_url)
    assert done.returncode == 2
    assert "error: --journal: a journal file was given, but a PostgreSQL database is configured" in done.stderr
