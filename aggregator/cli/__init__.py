"""The ``deepsearch`` command: a click group whose commands are imported only when invoked.

Each command lives in its own private module (``_search``, ``_compare``, ``_journal``,
``_sandbox``; ``bench`` and ``soak`` in :mod:`aggregator.bench`), registered below by import path
with its one-line help, so ``deepsearch --help`` imports none of them (nor aiohttp, pydantic
models, the sandbox or Faker) and starts in well under 0.3 s (``deepsearch bench --only startup``).

Exit codes: 0 at least one provider answered (also with no results, which is said on stderr), 1 the
run finished but an output file could not be written (``deepsearch show RUN_ID --out`` gets it from
the journal), 2 usage or configuration error (nothing was sent), 3 every provider failed or was
skipped, 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "batch": ("aggregator.cli._batch:batch_command",
              "Run one search or lookup per row of a CSV or JSONL FILE, N at a time; run it again to continue."),
    "bench": ("aggregator.bench.cli:bench",
              "Benchmarks on the in-process sandbox: scheduler overhead, rate-limit utilization, fan-out, "
              "time to first record and normalization throughput."),
    "compare": ("aggregator.cli._compare:compare_command",
                "Run every capable provider on QUERY and compare coverage, overlap, speed and cost."),
    "db": ("aggregator.cli._db:db_group",
           "The optional PostgreSQL database (DEEPSEARCH_DATABASE_URL): schema migrations and status."),
    "filter": ("aggregator.cli._search:filter_command",
               "Filter an index (Sixtyfour filter search): exact, range, text and nested conditions."),
    "lookup": ("aggregator.cli._search:lookup",
               "Look up one person from identity signals (at least one) and print their profile."),
    "mcp": ("aggregator.cli._mcp:mcp_command",
            "Serve deep search to AI agents over MCP (stdio, or --http), with credit caps per call and session."),
    "resume": ("aggregator.cli._journal:resume_command",
               "Continue an interrupted run: submitted jobs are polled, never started or paid for again."),
    "runs": ("aggregator.cli._journal:runs_command", "List recorded runs, newest first, with their status."),
    "sandbox": ("aggregator.cli._sandbox:sandbox", "The local provider emulators."),
    "search": ("aggregator.cli._search:search",
               "Search people or companies matching QUERY and print one merged result set."),
    "show": ("aggregator.cli._journal:show_command",
             "Show a recorded run's report from the journal (no provider is called)."),
    "soak": ("aggregator.bench.soak:soak",
             "Soak the provider emulators with faults: nothing may hang, be lost, duplicated or paid twice."),
    "worker": ("aggregator.cli._worker:worker_command",
               "Run batch rows queued in the database (DEEPSEARCH_DATABASE_URL) until stopped."),
}
"""Command name -> (``"module:attribute"`` of its click command, its one-line help for the listing).
A test checks each help line against the command's own."""


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs (or shows its help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, _, attribute = entry[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C before a command took SIGINT over (e.g. while importing it)
            click.echo("interrupted before the run started", err=True)
            sys.exit(130)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepsearch-aggregator")
def main() -> None:
    """Run one people/company deep search across Sixtyfour, Extruct and Orbit."""
