"""``deepsearch compare``: run every capable provider on one query and compare them.

``--report`` and ``--out`` are checked (folders created) before anything is sent; a write that still
fails after the run exits 1 saying how to get the journaled run (``deepsearch show RUN_ID --out``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console

from aggregator.cli._options import (
    deadline_option,
    output_options,
    provider_names,
    providers_option,
    settings_options,
    target_options,
)
from aggregator.cli._support import (
    EXIT_ALL_FAILED,
    EXIT_OK,
    Interrupted,
    err,
    report_interrupted,
    run_search,
    say_if_empty,
    settings_for,
    usage_error,
    write_output,
)
from aggregator.compare import compare
from aggregator.errors import ConfigError
from aggregator.render import comparison_tables, counted, write_report
from aggregator.report_html import render_html

__all__ = ["compare_command"]


@click.command("compare")
@click.argument("query")
@click.option("--mode", type=click.Choice(["people", "company"]), default="people", show_default=True)
@click.option("--max-results", type=int, default=None, help="Records per provider (1-5000).")
@providers_option
@deadline_option
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report with charts.")
@output_options
@target_options
@settings_options
def compare_command(query: str, mode: str, max_results: int | None, providers: tuple[str, ...],
                    deadline_s: float | None, report_path: Path | None, as_json: bool, out: Path | None,
                    sandbox: bool, live: bool, config: str | None, no_progress: bool, verbose: int) -> None:
    """Run every capable provider on QUERY and compare coverage, overlap, speed and cost."""
    if report_path is not None and report_path.suffix.lower() not in (".html", ".htm"):
        raise click.BadParameter("use a .html file", param_hint="--report")
    outputs = [(path, flag) for path, flag in ((report_path, "--report"), (out, "--out")) if path is not None]
    fields: dict[str, Any] = {"query": query, "mode": mode, "strategy": "all"}
    optional = {"max_results": max_results, "deadline_s": deadline_s}
    fields.update({k: v for k, v in optional.items() if v is not None})
    names = provider_names(providers)
    if names:
        fields["providers"] = names
    try:
        settings = settings_for(config, sandbox, live, verbose)
        report = asyncio.run(run_search(settings, fields, show_progress=not no_progress, outputs=outputs))
    except ConfigError as exc:
        usage_error(exc)
    except Interrupted as stop:
        report_interrupted(stop)
    comparison = compare(report)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(comparison.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        console = Console()
        for table in comparison_tables(comparison):
            console.print(table)
    say_if_empty(report)
    if report_path is not None:
        html = render_html(comparison)
        write_output(report, report_path, "--report", lambda: report_path.write_text(html, encoding="utf-8"))
        err.print(f"wrote the HTML report to {report_path}", highlight=False)
    if out is not None:
        count = write_output(report, out, "--out", lambda: write_report(report, out))
        err.print(f"wrote {counted(count, 'record')} to {out}", highlight=False)
    sys.exit(EXIT_OK if report.delivered else EXIT_ALL_FAILED)
