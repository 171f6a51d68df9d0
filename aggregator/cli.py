"""The ``deepsearch`` command (composition root: settings, logging, rendering).

Exit codes: 0 at least one provider delivered, 2 usage or configuration error, 3 every provider
failed or was skipped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aggregator.bench.cli import bench
from aggregator.bench.soak import soak
from aggregator.cli_sandbox import sandbox
from aggregator.cli_support import (
    EXIT_ALL_FAILED,
    EXIT_OK,
    IDENTITY_FLAGS,
    LOOKUP_MAX_HITS,
    Interrupted,
    announce,
    err,
    json_option,
    load_json_object,
    load_policy,
    print_report,
    report_interrupted,
    run_search,
    settings_for,
    usage_error,
)
from aggregator.compare import compare
from aggregator.config import Settings, load_criteria
from aggregator.core import Aggregator
from aggregator.errors import ConfigError, ProviderError
from aggregator.journal import SqliteJournal, default_journal_path
from aggregator.models import FieldValues, FilterCapabilities, PersonIdentity
from aggregator.pipelines import Policy
from aggregator.render import (
    OUTPUT_SUFFIXES,
    comparison_tables,
    fields_table,
    values_table,
    write_report,
)
from aggregator.report_html import render_html

__all__ = ["main"]



@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepsearch-aggregator")
def main() -> None:
    """Run one people/company deep search across Sixtyfour, Extruct and Orbit."""


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Options shared by ``search`` and ``lookup``: where to run, deadline, output."""
    options = [
        click.option("--provider", "--providers", "providers", multiple=True,
                     help="Provider(s) to use: repeatable or comma-separated, in order; default: every capable one."),
        click.option("--strategy", type=click.Choice(["all", "fallback", "race"]), default=None,
                     help="all = fan out; fallback = in order until --min-results; race = hedged, first wins."),
        click.option("--min-results", type=int, default=None, help="fallback/race: records that satisfy."),
        click.option("--hedge-delay", "hedge_delay_s", type=float, default=None,
                     help="race: seconds before starting the next provider."),
        click.option("--policy", "policy_ref", default=None,
                     help="A strategy policy: a name from the config's [policies] or a JSON/TOML file."),
        click.option("--deadline", "deadline_s", type=float, default=None, help="Overall deadline, seconds."),
        click.option("--json", "as_json", is_flag=True, help="Print the SearchReport as one JSON document."),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the report: .json, .jsonl or .csv."),
        click.option("--sandbox", is_flag=True, help="Force the local sandbox."),
        click.option("--live", is_flag=True, help="Force the real provider APIs (keys required)."),
        click.option("--config", type=click.Path(dir_okay=False),
                     help="A TOML file over config/default.toml."),
        click.option("--explain", is_flag=True,
                     help="Show what each provider would be sent (e.g. Orbit's structuredIntent); "
                          "send nothing."),
        click.option("--no-progress", is_flag=True, help="Do not show live progress."),
        click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Journal file (SQLite) of runs; default $DEEPSEARCH_JOURNAL or the user data dir."),
        click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _provider_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--provider a --provider b,c`` -> ``("a", "b", "c")``; ``()`` when the flag was not given.

    Raises:
        click.BadParameter: the flag was given but names no provider (``--provider ,``).
    """
    names = tuple(n.strip() for item in values for n in item.split(",") if n.strip())
    if values and not names:
        raise click.BadParameter("name at least one provider", param_hint="--provider")
    return names


def _execute(fields: dict[str, Any], providers: tuple[str, ...], strategy: str | None, min_results: int | None,
             hedge_delay_s: float | None, policy_ref: str | None, deadline_s: float | None, as_json: bool,
             out: Path | None, sandbox: bool, live: bool, config: str | None, explain: bool,
             no_progress: bool, verbose: int, journal: Path | None = None) -> None:
    """Run one request from the CLI and exit with the documented code."""
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"use one of {', '.join(OUTPUT_SUFFIXES)}", param_hint="--out")
    optional = {"deadline_s": deadline_s, "strategy": strategy, "min_results": min_results,
                "hedge_delay_s": hedge_delay_s}
    fields.update({k: v for k, v in optional.items() if v is not None})
    names = _provider_names(providers)
    if names:
        fields["providers"] = names
    try:
        settings = settings_for(config, sandbox, live, verbose)
        policy = load_policy(policy_ref, settings) if policy_ref else None
        if explain:
            asyncio.run(_explain(settings, fields))
            sys.exit(EXIT_OK)
    except ConfigError as exc:
        usage_error(exc)
    _run_and_report(settings, fields, as_json=as_json, out=out, no_progress=no_progress, policy=policy,
                    journal=journal)


def _run_and_report(settings: Settings, fields: dict[str, Any], *, as_json: bool, out: Path | None,
                    no_progress: bool, policy: Policy | None = None, journal: Path | None = None,
                    resume: str | None = None) -> None:
    """Run (or resume) one search, print its report and exit with the documented code."""
    started = time.perf_counter()
    try:
        report = asyncio.run(run_search(settings, fields, show_progress=not no_progress, policy=policy,
                                        journal=journal, resume=resume))
    except ConfigError as exc:
        usage_error(exc)
    except Interrupted as stop:
        report_interrupted(stop)
    print_report(report, as_json, out, time.perf_counter() - started)
    sys.exit(EXIT_OK if report.delivered else EXIT_ALL_FAILED)


async def _explain(settings: Settings, fields: dict[str, Any]) -> None:
    async with Aggregator(settings) as agg:
        request = agg.build_request(**fields)
        names, skipped = agg.plan(request)
        explained = {name: dict(agg.adapter(name).describe(request)) for name in names}
        explained.update({o.provider: {"skipped": o.note} for o in skipped})
    sys.stdout.buffer.write(orjson.dumps(explained, option=orjson.OPT_INDENT_2) + b"\n")


@main.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["people", "company"]), default="people", show_default=True)
@click.option("--max-results", type=int, default=None, help="Records per provider and merged (1-5000).")
@click.option("--exclude", multiple=True, help="LinkedIn URL/id or domain to suppress (repeatable).")
@click.option("--criteria", "criteria_file", type=click.Path(dir_okay=False),
              help="JSON or TOML list of {key, name, criterion} to grade companies by (Extruct).")
@click.option("--title", "titles", multiple=True, help="Structured: current title (repeatable).")
@click.option("--company", "companies", multiple=True, help="Structured: current employer (repeatable).")
@click.option("--location", "locations", multiple=True, help="Structured: where they live.")
@click.option("--school", "schools", multiple=True, help="Structured: school attended (repeatable).")
@click.option("--budget", type=float, default=None,
              help="Credit budget for the run: a paid call that would exceed it is not made.")
@click.option("--intent", "intent_file", type=click.Path(dir_okay=False),
              help="A JSON Orbit structuredIntent v1, used as-is (validated first).")
@run_options
def search(query: str, mode: str, max_results: int | None, exclude: tuple[str, ...],
           criteria_file: str | None, titles: tuple[str, ...], companies: tuple[str, ...],
           locations: tuple[str, ...], schools: tuple[str, ...], budget: float | None, intent_file: str | None,
           **run: Any) -> None:
    """Search people or companies matching QUERY and print one merged result set."""
    fields: dict[str, Any] = {"query": query, "mode": mode, "exclude": exclude, "titles": titles,
                              "companies": companies, "locations": locations, "schools": schools}
    if max_results is not None:
        fields["max_results"] = max_results
    if budget is not None:
        fields["budget"] = budget
    try:
        if criteria_file:
            fields["criteria"] = load_criteria(criteria_file)
        if intent_file:
            fields["structured_intent"] = load_json_object(intent_file, "--intent")
    except ConfigError as exc:
        usage_error(exc)
    _execute(fields, **run)


@main.command("compare")
@click.argument("query")
@click.option("--mode", type=click.Choice(["people", "company"]), default="people", show_default=True)
@click.option("--max-results", type=int, default=None, help="Records per provider (1-5000).")
@click.option("--provider", "--providers", "providers", multiple=True,
              help="Providers to compare (repeatable or comma-separated); default: every capable one.")
@click.option("--deadline", "deadline_s", type=float, default=None, help="Overall deadline, seconds.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report with charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the merged records.")
@click.option("--sandbox", is_flag=True, help="Force the local sandbox.")
@click.option("--live", is_flag=True, help="Force the real provider APIs (keys required).")
@click.option("--config", type=click.Path(dir_okay=False), help="A TOML file over config/default.toml.")
@click.option("--no-progress", is_flag=True, help="Do not show live progress.")
@click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr).")
def compare_command(query: str, mode: str, max_results: int | None, providers: tuple[str, ...],
                    deadline_s: float | None, report_path: Path | None, as_json: bool, out: Path | None,
                    sandbox: bool, live: bool, config: str | None, no_progress: bool, verbose: int) -> None:
    """Run every capable provider on QUERY and compare coverage, overlap, speed and cost."""
    if report_path is not None and report_path.suffix.lower() not in (".html", ".htm"):
        raise click.BadParameter("use a .html file", param_hint="--report")
    fields: dict[str, Any] = {"query": query, "mode": mode, "strategy": "all"}
    optional = {"max_results": max_results, "deadline_s": deadline_s}
    fields.update({k: v for k, v in optional.items() if v is not None})
    names = _provider_names(providers)
    if names:
        fields["providers"] = names
    try:
        settings = settings_for(config, sandbox, live, verbose)
        report = asyncio.run(run_search(settings, fields, show_progress=not no_progress))
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
    if report_path is not None:
        report_path.write_text(render_html(comparison), encoding="utf-8")
        err.print(f"wrote the HTML report to {report_path}", highlight=False)
    if out is not None:
        write_report(report, out)
    sys.exit(EXIT_OK if report.delivered else EXIT_ALL_FAILED)


@main.command("filter")
@click.option("--mode", type=click.Choice(["people", "company"]), default="company", show_default=True)
@click.option("--where", help='simple_filters JSON, e.g. \'{"hq_country_iso2": {"$eq": "US"}}\'.')
@click.option("--dsl", help='DSL filters JSON: {"query": {...}, "sort": [...], "size": N}.')
@click.option("--max-results", type=int, default=None, help="Records to return (1-5000).")
@click.option("--exclude", multiple=True, help="LinkedIn URL/id, company id or domain to suppress.")
@click.option("--fields", "list_fields", is_flag=True, help="List the fields you can filter on, then exit.")
@click.option("--values", "values_of", metavar="FIELD", help="Show the top values of FIELD, then exit.")
@click.option("--top-k", type=int, default=25, show_default=True, help="How many values --values shows (1-100).")
@run_options
def filter_command(mode: str, where: str | None, dsl: str | None, max_results: int | None,
                   exclude: tuple[str, ...], list_fields: bool, values_of: str | None, top_k: int,
                   **run: Any) -> None:
    """Filter an index (Sixtyfour filter search): exact, range, text and nested conditions."""
    try:
        simple_filters, filters = json_option(where, "--where"), json_option(dsl, "--dsl")
        if list_fields or values_of:
            settings = settings_for(run["config"], run["sandbox"], run["live"], run["verbose"])
            try:
                asyncio.run(_show_filter_metadata(settings, mode, values_of, top_k, simple_filters, filters,
                                                  run["providers"], run["as_json"]))
            except ProviderError as exc:
                err.print(Text.assemble(("error: ", "red"), str(exc)), highlight=False)
                sys.exit(EXIT_ALL_FAILED)
            sys.exit(EXIT_OK)
        if simple_filters is None and filters is None:
            raise ConfigError("--where", "give --where (simple_filters) or --dsl (filters), or use --fields")
    except ConfigError as exc:
        usage_error(exc)
    fields: dict[str, Any] = {"query": "filter search", "mode": mode, "exclude": exclude,
                              "simple_filters": simple_filters, "filters": filters}
    if max_results is not None:
        fields["max_results"] = max_results
    _execute(fields, **run)


async def _show_filter_metadata(settings: Settings, mode: Any, values_of: str | None, top_k: int,
                                simple_filters: dict[str, Any] | None, filters: dict[str, Any] | None,
                                providers: tuple[str, ...], as_json: bool) -> None:
    provider = providers[0] if providers else None
    async with Aggregator(settings) as agg:
        announce(agg)
        result: FilterCapabilities | FieldValues
        if values_of:
            result = await agg.filter_values(values_of, mode=mode, top_k=top_k, simple_filters=simple_filters,
                                             filters=filters, provider=provider)
        else:
            result = await agg.filter_fields(mode, provider=provider)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        Console().print(fields_table(result) if isinstance(result, FilterCapabilities) else values_table(result))


@main.command()
@click.option("--linkedin-url", help="LinkedIn profile URL.")
@click.option("--email")
@click.option("--phone", "phone_number", help="Phone number (E.164 preferred).")
@click.option("--profile-id", help="An Orbit profile id.")
@click.option("--url", "urls", multiple=True, help="A public URL about the person (repeatable).")
@click.option("--username", "usernames", multiple=True, help="A public username, e.g. GitHub (repeatable).")
@click.option("--run-shape", type=click.Choice(["partial_only", "partial_plus_full", "full_generation_only"]),
              default="partial_plus_full", show_default=True,
              help="Orbit: a fast partial profile, partial then full, or only the full profile.")
@run_options
def lookup(linkedin_url: str | None, email: str | None, phone_number: str | None, profile_id: str | None,
           urls: tuple[str, ...], usernames: tuple[str, ...], run_shape: str, **run: Any) -> None:
    """Look up one person from identity signals (at least one) and print their profile."""
    signals = {"linkedin_url": linkedin_url, "email": email, "phone_number": phone_number,
               "profile_id": profile_id, "urls": urls, "usernames": usernames}
    try:
        identity = PersonIdentity(**{k: v for k, v in signals.items() if v})
    except ValidationError as exc:
        error = ConfigError.from_validation(exc, default="identity")
        if error.field == "identity":
            usage_error(ConfigError("lookup", f"give at least one of {', '.join(IDENTITY_FLAGS.values())}"))
        usage_error(ConfigError(IDENTITY_FLAGS.get(error.field, error.field), error.problem))
    fields = {"query": f"lookup {identity.describe()}", "mode": "people", "identity": identity,
              "run_shape": run_shape, "max_results": LOOKUP_MAX_HITS}
    _execute(fields, **run)


@main.command("runs")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Journal file.")
@click.option("--json", "as_json", is_flag=True)
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


@main.command("resume")
@click.argument("run_id")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Journal file.")
@click.option("--json", "as_json", is_flag=True, help="Print the SearchReport as one JSON document.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write .json, .jsonl or .csv.")
@click.option("--config", type=click.Path(dir_okay=False), help="A TOML file over config/default.toml.")
@click.option("--no-progress", is_flag=True, help="Do not show live progress.")
@click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr).")
def resume_command(run_id: str, journal: Path | None, as_json: bool, out: Path | None, config: str | None,
                   no_progress: bool, verbose: int) -> None:
    """Continue an interrupted run: submitted jobs are polled, never started or paid for again."""
    try:
        settings = settings_for(config, False, False, verbose)
    except ConfigError as exc:
        usage_error(exc)
    _run_and_report(settings, {}, as_json=as_json, out=out, no_progress=no_progress, journal=journal, resume=run_id)


@main.command("show")
@click.argument("run_id")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Journal file.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored SearchReport as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write .json, .jsonl or .csv.")
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


main.add_command(sandbox)
main.add_command(bench)
main.add_command(soak)
