"""``deepsearch runs``, ``resume`` and ``show``: the journal of runs.

Run ids are accepted by unique prefix (at least :data:`~aggregator.jobstore.MIN_RUN_ID_PREFIX`
characters), as git accepts a commit's; ``runs`` shows each id's shortest unique prefix. Times a
person reads are wall-clock times: a sandbox run's virtual seconds are labelled as such.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console

from aggregator.cli._options import journal_option, output_options, settings_options
from aggregator.cli._support import journal_store, print_report, run_and_report, settings_for, usage_error
from aggregator.config import DatabaseSettings, load_database_settings
from aggregator.errors import ConfigError
from aggregator.jobstore import RunIdError, RunState
from aggregator.journal import BufferedJournal
from aggregator.render import runs_table

__all__ = ["resume_command", "runs_command", "show_command"]


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _store(journal: Path | None, database: DatabaseSettings | None = None) -> BufferedJournal:
    """The journal to read (PostgreSQL when DEEPSEARCH_DATABASE_URL / ``[database] url`` is set); a bad
    setting is a usage error (exit 2)."""
    try:
        return journal_store(database if database is not None else load_database_settings(), journal)
    except ConfigError as exc:
        usage_error(exc)
        raise  # not reached: a usage error exits


@click.command("runs")
@click.option("--limit", type=int, default=20, show_default=True)
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON document.")
def runs_command(limit: int, journal: Path | None, as_json: bool) -> None:
    """List recorded runs, newest first, with their status.

    Times are wall-clock times (never the sandbox's sped-up clock); Records counts merged records
    (the report's, or merged so far for a run without a report). The Run column shows each id's
    shortest unique prefix, which `show` and `resume` accept.
    """

    store = _store(journal)

    async def listing() -> list[Any]:
        async with store:
            return list(await store.runs(limit))

    try:
        rows = asyncio.run(listing())
    except ConfigError as exc:  # the database is unreachable, or its schema is not this version's
        usage_error(exc)
        raise  # not reached: a usage error exits
    if as_json:
        data = [{key: _json_value(value) for key, value in asdict(row).items()} for row in rows]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return
    Console().print(runs_table(rows, title=f"Runs in {store.location}"))


def _run_id_error(error: RunIdError) -> None:
    """No run, or several, have that id prefix: a usage error listing the candidates; exits 2."""
    usage_error(ConfigError("run_id", error.problem))


@click.command("resume")
@click.argument("run_id")
@journal_option
@output_options
@settings_options
def resume_command(run_id: str, journal: Path | None, as_json: bool, out: Path | None, config: str | None,
                   no_progress: bool, verbose: int) -> None:
    """Continue an interrupted run: submitted jobs are polled, never started or paid for again.

    RUN_ID may be a unique prefix of the run's id (`deepsearch runs` lists them)."""
    try:
        settings = settings_for(config, False, False, verbose)
    except ConfigError as exc:
        usage_error(exc)

    store = _store(journal, settings.database)

    async def resolve() -> str:
        async with store:
            return await store.resolve_run_id(run_id)

    try:
        full_id = asyncio.run(resolve())
    except RunIdError as exc:
        _run_id_error(exc)
        raise  # not reached: a usage error exits
    except ConfigError as exc:  # the database is unreachable, or its schema is not this version's
        usage_error(exc)
        raise  # not reached: a usage error exits
    run_and_report(settings, {}, as_json=as_json, out=out, no_progress=no_progress, journal=journal,
                   resume=full_id)


@click.command("show")
@click.argument("run_id")
@journal_option
@output_options
def show_command(run_id: str, journal: Path | None, as_json: bool, out: Path | None) -> None:
    """Show a recorded run's report from the journal (no provider is called).

    RUN_ID may be a unique prefix of the run's id. The footer gives the wall time the run took (and,
    on the sandbox, its virtual seconds, labelled as such)."""

    store = _store(journal)

    async def load() -> RunState | None:
        async with store:
            return await store.run(await store.resolve_run_id(run_id))

    try:
        state = asyncio.run(load())
    except RunIdError as exc:
        _run_id_error(exc)
        raise  # not reached: a usage error exits
    except ConfigError as exc:  # the database is unreachable, or its schema is not this version's
        usage_error(exc)
        raise  # not reached: a usage error exits
    if state is None:  # removed between the two reads
        usage_error(ConfigError("run_id", f"no run {run_id!r} in the journal; `deepsearch runs` lists them"))
    assert state is not None
    if state.report is None:
        usage_error(ConfigError("run_id", f"run {state.run_id} has no report yet (status {state.status})"))
    assert state.report is not None
    print_report(state.report, as_json, out, state.wall_s, journal)
