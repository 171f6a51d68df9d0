"""The ``deepsearch`` command (composition root: settings, logging, rendering).

Exit codes: 0 at least one provider delivered, 2 usage or configuration error, 3 every provider
failed or was skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
import structlog
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aggregator.config import Settings, load_criteria, load_settings
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.events import Event, OutcomeEvent, ProgressEvent, ReportEvent
from aggregator.models import SearchReport
from aggregator.render import OUTPUT_SUFFIXES, outcomes_table, records_table, report_json, write_report

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_ALL_FAILED = 0, 2, 3
err = Console(stderr=True)


def configure_logging(verbosity: int) -> None:
    """structlog to stderr: console on a TTY, JSON lines otherwise. -v info, -vv debug."""
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    renderer: Any = (structlog.dev.ConsoleRenderer() if sys.stderr.isatty()
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class ProgressView:
    """One status line per provider: phase, message, results so far, elapsed (virtual) seconds."""

    def __init__(self, live: bool) -> None:
        self.rows: dict[str, ProgressEvent] = {}
        self.live = live
        self._last: dict[str, tuple[str, int]] = {}

    def update(self, event: ProgressEvent) -> None:
        self.rows[event.provider] = event
        state = (event.phase, event.results_so_far)
        if not self.live and self._last.get(event.provider) != state:  # off a TTY: on change only
            self._last[event.provider] = state
            err.print(f"{event.provider}: {event.phase}"
                      + (f" - {event.message}" if event.message else "")
                      + f" ({event.results_so_far} results)", highlight=False, markup=False)

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for event in self.rows.values():
            table.add_row(f"[bold]{event.provider}[/]", f"[cyan]{event.phase}[/]", event.message or "",
                          f"{event.results_so_far} results", f"{event.elapsed_s:.0f}s")
        return table


def _announce(agg: Aggregator) -> None:
    if agg.sandbox is not None:
        urls = ", ".join(f"{n} {u}" for n, u in agg.sandbox.base_urls.items())
        speed = 1 / agg.clock.scale
        err.print(f"[yellow]Running on the sandbox[/] (no API keys configured or --sandbox): local "
                  f"emulators at {urls}; virtual time runs {speed:g}x faster.", highlight=False)
    for target in agg.targets.values():
        if target.skip_reason:
            err.print(f"[dim]{target.name}: skipped ({target.skip_reason})[/]", highlight=False)


async def _run_search(settings: Settings, fields: dict[str, Any], show_progress: bool) -> SearchReport:
    async with Aggregator(settings) as agg:
        request = agg.build_request(**fields)
        agg.plan(request)  # reject bad input before anything is printed or sent
        _announce(agg)
        view = ProgressView(live=show_progress and err.is_terminal)
        report: SearchReport | None = None
        with Live(view, console=err, refresh_per_second=8, transient=True,
                  auto_refresh=view.live) if view.live else contextlib.nullcontext():
            event: Event
            async for event in agg.stream(request):
                if isinstance(event, ProgressEvent) and show_progress:
                    view.update(event)
                elif isinstance(event, OutcomeEvent) and not view.live and show_progress:
                    err.print(f"{event.outcome.provider}: {event.outcome.status}", highlight=False,
                              markup=False)
                elif isinstance(event, ReportEvent):
                    report = event.report
        assert report is not None
        return report


def _settings(config: str | None, sandbox: bool, live: bool, verbose: int) -> Settings:
    configure_logging(verbose)
    if sandbox and live:
        raise click.UsageError("--sandbox and --live exclude each other")
    settings = load_settings(config)
    return settings.with_target("sandbox" if sandbox else "live" if live else "auto")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepsearch-aggregator")
def main() -> None:
    """Run one people/company deep search across Sixtyfour, Extruct and Orbit."""


@main.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["people", "company"]), default="people", show_default=True)
@click.option("--max-results", type=int, default=None, help="Records per provider and merged (1-5000).")
@click.option("--provider", "providers", multiple=True, help="Provider to use (repeatable); default: all.")
@click.option("--deadline", "deadline_s", type=float, default=None, help="Overall deadline in seconds.")
@click.option("--exclude", multiple=True, help="LinkedIn URL/id or domain to suppress (repeatable).")
@click.option("--criteria", "criteria_file", type=click.Path(dir_okay=False),
              help="JSON or TOML list of {key, name, criterion} to grade companies by (Extruct).")
@click.option("--json", "as_json", is_flag=True, help="Print the SearchReport as one JSON document.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write .json, .jsonl or .csv.")
@click.option("--sandbox", is_flag=True, help="Force the local sandbox.")
@click.option("--live", is_flag=True, help="Force the real provider APIs (keys required).")
@click.option("--config", type=click.Path(dir_okay=False), help="A TOML file over config/default.toml.")
@click.option("--no-progress", is_flag=True, help="Do not show live progress.")
@click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr).")
def search(query: str, mode: str, max_results: int | None, providers: tuple[str, ...],
           deadline_s: float | None, exclude: tuple[str, ...], criteria_file: str | None,
           as_json: bool, out: Path | None,
           sandbox: bool, live: bool, config: str | None, no_progress: bool, verbose: int) -> None:
    """Search people or companies matching QUERY and print one merged result set."""
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"use one of {', '.join(OUTPUT_SUFFIXES)}", param_hint="--out")
    fields: dict[str, Any] = {"query": query, "mode": mode, "exclude": exclude}
    if max_results is not None:
        fields["max_results"] = max_results
    if deadline_s is not None:
        fields["deadline_s"] = deadline_s
    if providers:
        fields["providers"] = providers
    try:
        if criteria_file:
            fields["criteria"] = load_criteria(criteria_file)
        settings = _settings(config, sandbox, live, verbose)
        started = time.perf_counter()
        report = asyncio.run(_run_search(settings, fields, show_progress=not no_progress))
    except ConfigError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    _print_report(report, as_json, out, time.perf_counter() - started)
    sys.exit(EXIT_OK if report.delivered else EXIT_ALL_FAILED)


def _print_report(report: SearchReport, as_json: bool, out: Path | None, wall_s: float) -> None:
    if as_json:
        sys.stdout.buffer.write(report_json(report) + b"\n")
        sys.stdout.flush()
    else:
        console = Console()
        console.print(records_table(report))
        console.print(outcomes_table(report))
        console.print(f"run {report.run_id}: {len(report.records)} records, "
                      f"{report.total_credits:g} credits, {wall_s:.1f} s wall time", highlight=False)
    if out is not None:
        count = write_report(report, out)
        err.print(f"wrote {count} records to {out}", highlight=False)


@main.group()
def sandbox() -> None:
    """The local provider emulators."""


@sandbox.command("serve")
@click.option("--time-scale", type=float, default=None, help="Wall seconds per virtual second (0-1].")
@click.option("--seed", type=int, default=None)
@click.option("--port", "ports", multiple=True, help="PROVIDER=PORT (repeatable); default ephemeral.")
@click.option("-v", "--verbose", count=True)
def serve(time_scale: float | None, seed: int | None, ports: tuple[str, ...], verbose: int) -> None:
    """Run the emulators standalone until Ctrl-C and print their base URLs."""
    from providers import REGISTRY
    from providers.sandbox.runner import SandboxConfig
    from providers.sandbox.runner import serve as serve_sandbox

    configure_logging(verbose)
    settings = load_settings().sandbox
    port_map: dict[str, int] = {}
    for item in ports:
        name, _, port = item.partition("=")
        if name not in REGISTRY or not port.isdigit():
            raise click.BadParameter(f"expected PROVIDER=PORT with PROVIDER in {sorted(REGISTRY)}",
                                     param_hint="--port")
        port_map[name] = int(port)
    scale = time_scale if time_scale is not None else settings.time_scale
    if not 0 < scale <= 1:
        raise click.BadParameter("must be in (0, 1]", param_hint="--time-scale")
    config = SandboxConfig(time_scale=scale, seed=settings.seed if seed is None else seed,
                           n_companies=settings.n_companies, providers=tuple(REGISTRY), ports=port_map)

    def ready(urls: dict[str, str]) -> None:
        for name, url in urls.items():
            click.echo(f"{name}\t{url}")
        err.print(f"sandbox ready (time scale {scale:g}); Ctrl-C to stop", highlight=False)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_sandbox(config, on_ready=ready))
