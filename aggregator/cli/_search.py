"""``deepsearch search``, ``filter`` and ``lookup``: run one request and print its report.

Exit codes: 0 at least one provider delivered (also with no record: "no results" is said on stderr),
1 the run finished but ``--out`` could not be written (the run is in the journal), 2 usage or
configuration error (nothing sent), 3 every provider failed or was skipped, 130 interrupted.

Options that cannot apply are refused (exit 2, naming the flag and why), never ignored: with
``--explain``, ``--out``, ``--journal`` and the cache flags (nothing is written, recorded or answered);
with ``--no-cache``, ``--refresh`` and ``--cache-ttl``; with ``--policy``,
``--strategy`` / ``--min-results`` / ``--hedge-delay`` (the policy sets them); a strategy setting its
strategy does not use (the library refuses it: :func:`aggregator.pipelines.refuse_inapplicable`);
``filter --fields`` / ``--values`` with the search-only options; ``--top-k`` without ``--values``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from aggregator.cli._options import provider_names, refuse_given, run_options
from aggregator.cli._support import (
    EXIT_ALL_FAILED,
    EXIT_OK,
    IDENTITY_FLAGS,
    LOOKUP_MAX_HITS,
    announce,
    err,
    json_option,
    load_json_object,
    load_policy,
    run_and_report,
    settings_for,
    usage_error,
)
from aggregator.config import Settings, load_criteria
from aggregator.core import Aggregator
from aggregator.errors import ConfigError, ProviderError
from aggregator.models import FieldValues, FilterCapabilities, PersonIdentity
from aggregator.render import fields_table, values_table

__all__ = ["filter_command", "lookup", "search"]

def _execute(fields: dict[str, Any], providers: tuple[str, ...], strategy: str | None, min_results: int | None,
             hedge_delay_s: float | None, policy_ref: str | None, deadline_s: float | None, as_json: bool,
             out: Path | None, sandbox: bool, live: bool, config: str | None, explain: bool,
             no_progress: bool, verbose: int, journal: Path | None = None, no_cache: bool = False,
             refresh: bool = False, cache_ttl_s: float | None = None) -> None:
    """Run one request from the CLI and exit with the documented code."""
    try:
        if explain:
            refuse_given(("out", "journal"), "--explain sends nothing, so no record is written or run recorded")
            refuse_given(("no_cache", "refresh", "cache_ttl_s"),
                         "--explain sends nothing and answers nothing, so the result cache does not apply")
        if no_cache:
            refuse_given(("refresh", "cache_ttl_s"), "--no-cache skips the result cache")
        if cache_ttl_s is not None and not cache_ttl_s > 0:
            raise ConfigError("--cache-ttl", f"must be above 0 seconds, got {cache_ttl_s:g}; use --no-cache to "
                                             "skip the cache")
        if policy_ref:
            refuse_given(("strategy", "min_results", "hedge_delay_s"),
                         "--policy sets the strategy and its settings; put them in the policy")
    except ConfigError as exc:
        usage_error(exc)
    optional = {"deadline_s": deadline_s, "strategy": strategy, "min_results": min_results,
                "hedge_delay_s": hedge_delay_s}
    fields.update({k: v for k, v in optional.items() if v is not None})
    names = provider_names(providers)
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
    cache: dict[str, Any] = {"cache": False} if no_cache else {
        "cache_ttl_s": cache_ttl_s if cache_ttl_s is not None else settings.cache.cli_ttl_s, "refresh": refresh}
    run_and_report(settings, fields, as_json=as_json, out=out, no_progress=no_progress, policy=policy,
                    journal=journal, cache=cache)


async def _explain(settings: Settings, fields: dict[str, Any]) -> None:
    async with Aggregator(settings) as agg:
        plan = agg.start(**fields).plan
        explained = {name: dict(agg.adapter(name).describe(plan.request)) for name in plan.providers}
        explained.update({o.provider: {"skipped": o.note} for o in plan.skipped})
    sys.stdout.buffer.write(orjson.dumps(explained, option=orjson.OPT_INDENT_2) + b"\n")


@click.command()
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
    options: dict[str, dict[str, Any]] = {}
    try:
        if criteria_file:
            options["extruct"] = {"criteria": load_criteria(criteria_file)}
        if intent_file:
            options["orbit"] = {"structured_intent": load_json_object(intent_file, "--intent")}
    except ConfigError as exc:
        usage_error(exc)
    if options:
        fields["options"] = options
    _execute(fields, **run)


@click.command("filter")
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
        if not values_of:
            refuse_given(("top_k",), "--top-k sets how many values --values shows")
        if list_fields or values_of:
            listing = "--values" if values_of else "--fields"
            if values_of:
                refuse_given(("list_fields",), "--fields and --values each print one listing; give one")
            else:
                refuse_given(("where", "dsl"), "--fields lists every field (--where/--dsl scope --values)")
            refuse_given(("max_results", "exclude", "strategy", "min_results", "hedge_delay_s", "policy_ref",
                          "deadline_s", "out", "explain", "journal", "no_cache", "refresh", "cache_ttl_s"),
                         f"{listing} reads the index's metadata (free) and runs no search")
            if len(provider_names(run["providers"])) > 1:
                raise ConfigError("--provider", f"{listing} reads one provider's index; name one")
            settings = settings_for(run["config"], run["sandbox"], run["live"], run["verbose"])
            try:
                asyncio.run(_show_filter_metadata(settings, mode, values_of, top_k, simple_filters, filters,
                                                  provider_names(run["providers"]), run["as_json"]))
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


@click.command()
@click.option("--linkedin-url", help="LinkedIn profile URL.")
@click.option("--email")
@click.option("--phone", "phone_number", help="Phone number (E.164 preferred).")
@click.option("--profile-id", help="An Orbit profile id.")
@click.option("--url", "urls", multiple=True, help="A public URL about the person (repeatable).")
@click.option("--username", "usernames", multiple=True, help="A public username, e.g. GitHub (repeatable).")
@click.option("--run-shape", type=click.Choice(["partial_only", "partial_plus_full", "full_generation_only"]),
              default=None,
              help="Orbit: a fast partial profile, partial then full (default), or only the full profile.")
@run_options
def lookup(linkedin_url: str | None, email: str | None, phone_number: str | None, profile_id: str | None,
           urls: tuple[str, ...], usernames: tuple[str, ...], run_shape: str | None, **run: Any) -> None:
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
    fields: dict[str, Any] = {"query": f"lookup {identity.describe()}", "mode": "people", "identity": identity,
                              "max_results": LOOKUP_MAX_HITS}
    if run_shape is not None:
        fields["options"] = {"orbit": {"run_shape": run_shape}}
    _execute(fields, **run)
