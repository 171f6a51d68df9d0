"""``deepsearch runs``, ``resume`` and ``show``: the journal of runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aggregator.cli._options import journal_option, output_options, settings_options
from aggregator.cli._support import print_report, run_and_report, settings_for, usage_error
from aggregator.errors import ConfigError
from aggregator.journal import SqliteJournal, default_journal_path

__all__ = ["resume_command", "runs_command", "show_command"]


@click.command("runs")
@click.option("--limit", type=int, default=20, show_default=True)
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON document.")
def runs_command(limit: int, journal: Path | None, as_json: bool) -> None:
    """List recorded runs, newest first, with their status."""

    async def listing() -> list[Any]:
        async with SqliteJournal(journal or default_journal_path()) as store:
            return list(await store.runs(limit))

    rows = asyncio.run(listing())
    if as_json:
        data = [{**row.__dict__, "created_at": row.created_at.isoformat()} for row in rows]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return
    table = Table(title=f"Runs in {journal or default_journal_path()}", header_style="bold")
    for col in ("Run", "Created", "Status", "Mode", "Query", "Providers", "Records"):
        table.add_column(col)
    for row in rows:
        table.add_row(row.run_id, row.created_at.strftime("%Y-%m-%d %H:%M:%S"), row.status, row.mode,
                      escape(row.query), ", ".join(row.providers), str(row.records))
    Console().print(table)


@click.command("resume")
@click.argument("run_id")
@journal_option
@output_options
@settings_options
def resume_command(run_id: str, journal: Path | None, as_json: bool, out: Path | None, config: str | None,
                   no_progress: bool, verbose: int) -> None:
    """Continue an interrupted run: submitted jobs are polled, never started or paid for again."""
    try:
        settings = settings_for(config, False, False, verbose)
    except ConfigError as exc:
        usage_error(exc)
    run_and_report(settings, {}, as_json=as_json, out=out, no_progress=no_progress, journal=journal, resume=run_id)


@click.command("show")
@click.argument("run_id")
@journal_option
@output_options
def show_command(run_id: str, journal: Path | None, as_json: bool, out: Path | None) -> None:
    """Show a recorded run's report from the journal (no provider is called)."""

    async def load() -> Any:
        async with SqliteJournal(journal or default_journal_path()) as store:
            return await store.run(run_id)

    state = asyncio.run(load())
    if state is None:
        usage_error(ConfigError("run_id", f"no run {run_id!r} in the journal; `deepsearch runs` lists them"))
    if state.report is None:
        usage_error(ConfigError("run_id", f"run {run_id} has no report yet (status {state.status})"))
    print_report(state.report, as_json, out, state.report.elapsed_s)
