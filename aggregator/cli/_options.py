"""Options shared by the ``deepsearch`` commands, defined once.

- :func:`settings_options`: ``--config``, ``--no-progress``, ``-v`` (every command that runs or resumes);
- :func:`target_options`: ``--sandbox`` / ``--live`` (commands that choose where to run);
- :func:`output_options`: ``--json``, ``--out`` (every command that prints a report);
- :func:`journal_option`: ``--journal`` (every command that reads or writes the journal);
- :func:`cache_options`: ``--no-cache``, ``--refresh``, ``--cache-ttl`` (the result cache, :mod:`aggregator.cache`);
- :func:`run_options`: all of the above plus providers, strategy, deadline and ``--explain``
  (``search``, ``filter``, ``lookup``).

An option given where it cannot apply is refused with :func:`refuse_given` (a usage error naming the
flag and why), never silently ignored; options documented as repeatable are ``multiple=True`` in every
command that has them (``tests/test_cli_refusals.py`` checks both against the README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import click
from click.core import ParameterSource

from aggregator.errors import ConfigError

__all__ = [
    "cache_options",
    "deadline_option",
    "flag_of",
    "journal_option",
    "output_options",
    "provider_names",
    "providers_option",
    "refuse_given",
    "run_options",
    "settings_options",
    "target_options",
]

F = TypeVar("F", bound=Callable[..., None])


def _compose(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Apply ``options`` so that they appear in ``--help`` in the order given."""

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _records_file(path: Path | None) -> Path | None:
    """``--out`` names a format we write (by its extension), checked when the flag is parsed, for every command."""
    from aggregator.render import OUTPUT_SUFFIXES

    if path is not None and path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"use one of {', '.join(OUTPUT_SUFFIXES)}")
    return path


providers_option = click.option(
    "--provider", "--providers", "providers", multiple=True,
    help="Provider(s) to use: repeatable or comma-separated, in order; default: every capable one.")
deadline_option = click.option("--deadline", "deadline_s", type=float, default=None,
                               help="Overall deadline, seconds.")
journal_option = click.option(
    "--journal", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Journal file (SQLite) of runs; default $DEEPSEARCH_JOURNAL or the user data dir.")
output_options = _compose(
    click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document."),
    click.option("--out", type=click.Path(dir_okay=False, path_type=Path), callback=lambda _c, _p, v: _records_file(v),
                 help="Also write the records: .json, .jsonl or .csv."),
)
target_options = _compose(
    click.option("--sandbox", is_flag=True, help="Force the local sandbox."),
    click.option("--live", is_flag=True, help="Force the real provider APIs (keys required)."),
)
settings_options = _compose(
    click.option("--config", type=click.Path(dir_okay=False), help="A TOML file over config/default.toml."),
    click.option("--no-progress", is_flag=True, help="Do not show live progress."),
    click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr)."),
)
cache_options = _compose(
    click.option("--no-cache", "no_cache", is_flag=True,
                 help="Do not answer from the result cache, and do not store this run in it."),
    click.option("--refresh", is_flag=True, help="Run anew even if cached, and replace the cache entry."),
    click.option("--cache-ttl", "cache_ttl_s", type=float, default=None, metavar="SECONDS",
                 help="Answer from a cached identical run at most this old; default [cache] cli_ttl_s (3600)."),
)
run_options = _compose(
    providers_option,
    click.option("--strategy", type=click.Choice(["all", "fallback", "race"]), default=None,
                 help="all = fan out; fallback = in order until --min-results; race = hedged, first wins."),
    click.option("--min-results", type=int, default=None, help="fallback/race: records that satisfy."),
    click.option("--hedge-delay", "hedge_delay_s", type=float, default=None,
                 help="race: seconds before starting the next provider."),
    click.option("--policy", "policy_ref", default=None,
                 help="A strategy policy: a name from the config's [policies] or a JSON/TOML file."),
    deadline_option,
    cache_options,
    output_options,
    target_options,
    settings_options,
    click.option("--explain", is_flag=True,
                 help="Show what each provider would be sent (e.g. Orbit's structuredIntent); send nothing."),
    journal_option,
)
"""Options shared by ``search``, ``filter`` and ``lookup``: where to run, strategy, deadline, output."""


def provider_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--provider a --provider b,c`` -> ``("a", "b", "c")``; ``()`` when the flag was not given.

    Raises:
        click.BadParameter: the flag was given but names no provider (``--provider ,``).
    """
    names = tuple(n.strip() for item in values for n in item.split(",") if n.strip())
    if values and not names:
        raise click.BadParameter("name at least one provider", param_hint="--provider")
    return names


def flag_of(param: click.Parameter) -> str:
    """The flag a user types for ``param`` (its first long option), e.g. ``--hedge-delay``."""
    return next((o for o in param.opts if o.startswith("--")), param.opts[0] if param.opts else str(param.name))


def refuse_given(names: Iterable[str], why: str) -> None:
    """Refuse the options among ``names`` (parameter names) that the user gave to the running command:
    they cannot apply, because ``why``. Options left at their default are fine.

    Raises:
        ConfigError: naming the first such option's flag (the caller turns it into exit 2).
    """
    ctx = click.get_current_context()
    wanted = set(names)
    for param in ctx.command.params:
        if param.name in wanted and ctx.get_parameter_source(param.name) in (ParameterSource.COMMANDLINE,
                                                                              ParameterSource.ENVIRONMENT):
            raise ConfigError(flag_of(param), f"cannot apply here: {why}")
