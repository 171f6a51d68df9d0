"""Plumbing of the ``deepsearch`` command: logging, progress display, running, loading, printing.

The commands themselves are in the other :mod:`aggregator.cli` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import click
import orjson
import structlog
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aggregator.config import DatabaseSettings, Settings, load_settings
from aggregator.core import Aggregator
from aggregator.db import open_journal
from aggregator.errors import ConfigError
from aggregator.events import Event, OutcomeEvent, ProgressEvent, RecordsEvent, ReportEvent, RunStartedEvent
from aggregator.journal import BufferedJournal
from aggregator.models import MergedRecord, Person, SearchReport
from aggregator.pipelines import Policy
from aggregator.render import (
    cached_line,
    counted,
    outcomes_table,
    profile_view,
    records_table,
    report_json,
    write_report,
)

__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_WRITTEN",
    "EXIT_OK",
    "EXIT_USAGE",
    "IDENTITY_FLAGS",
    "LOOKUP_MAX_HITS",
    "Interrupted",
    "ProgressView",
    "announce",
    "configure_logging",
    "err",
    "journal_store",
    "json_option",
    "load_json_object",
    "load_policy",
    "prepare_output",
    "print_report",
    "report_interrupted",
    "run_and_report",
    "run_search",
    "say_if_empty",
    "settings_for",
    "usage_error",
    "write_output",
]

EXIT_OK, EXIT_NOT_WRITTEN, EXIT_USAGE, EXIT_ALL_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
"""0 at least one provider answered (also with no record: "no results" is said on stderr); 1 the run
finished and is in the journal, but an output file could not be written (the message says how to get
it); 2 usage or configuration error, nothing sent; 3 every provider failed or was skipped; 130 interrupted."""
IDENTITY_FLAGS = {"linkedin_url": "--linkedin-url", "email": "--email", "phone_number": "--phone",
                  "profile_id": "--profile-id", "urls": "--url", "usernames": "--username"}
LOOKUP_MAX_HITS = 10  # a lookup reads a partial and a full profile of one person: a few hits at most
err = Console(stderr=True)
OPTION_FLAGS = {"options.extruct.criteria": "--criteria", "options.extruct": "--criteria",
                "options.orbit.structured_intent": "--intent", "options.orbit.run_shape": "--run-shape",
                "options.orbit": "--intent/--run-shape", "strategy": "--strategy", "min_results": "--min-results",
                "hedge_delay_s": "--hedge-delay", "policy": "--policy"}
"""The flag that sets each provider option or strategy setting, for usage errors (first matching prefix wins)."""


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
    """One status line per provider: phase, message, results so far, elapsed seconds (labelled
    ``virtual s`` on the sandbox, whose clock runs faster than the wall)."""

    def __init__(self, live: bool, sandbox: bool = False) -> None:
        self.unit = " virtual s" if sandbox else "s"
        self.rows: dict[str, ProgressEvent] = {}
        self.latest: dict[str, MergedRecord] = {}  # record id -> record, newest last
        self.total = 0
        self.live = live
        self._last: dict[str, tuple[str, int]] = {}

    def update(self, event: ProgressEvent) -> None:
        self.rows[event.provider] = event
        state = (event.phase, event.results_so_far)
        if not self.live and self._last.get(event.provider) != state:  # off a TTY: on change only
            self._last[event.provider] = state
            err.print(f"{event.provider}: {event.phase}"
                      + (f" - {event.message}" if event.message else "")
                      + f" ({counted(event.results_so_far, 'result')})", highlight=False, markup=False)

    def records(self, event: RecordsEvent) -> None:
        for record_id in event.removed:
            self.latest.pop(record_id, None)
        for record in event.changed:
            self.latest.pop(record.record_id, None)
            self.latest[record.record_id] = record
        self.total = event.total

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for event in self.rows.values():
            table.add_row(f"[bold]{event.provider}[/]", f"[cyan]{event.phase}[/]", escape(event.message or ""),
                          counted(event.results_so_far, "result"), f"{event.elapsed_s:.0f}{self.unit}")
        if self.latest:
            table.add_row(f"[bold]{self.total} merged[/]", "latest:", "", "", "")
            for record in list(self.latest.values())[-6:]:
                entity = record.entity
                label = entity.full_name if isinstance(entity, Person) else entity.name
                detail = entity.title if isinstance(entity, Person) else entity.domain
                table.add_row("", escape(label or record.record_id), escape(detail or ""),
                              ", ".join(record.providers), "")
        return table


def announce(agg: Aggregator) -> None:
    if agg.sandbox is not None:
        urls = ", ".join(f"{n} {u}" for n, u in agg.sandbox.base_urls.items())
        speed = 1 / agg.clock.scale
        where = "local emulators" if agg.on_ephemeral_sandbox else "the standalone sandbox's emulators"
        err.print(f"[yellow]Running on the sandbox[/] (no API keys configured or --sandbox): {where} "
                  f"at {urls}; virtual time runs {speed:g}x faster.", highlight=False)
    for target in agg.targets.values():
        if target.skip_reason:
            err.print(f"[dim]{target.name}: skipped ({target.skip_reason})[/]", highlight=False)


def usage_error(error: ConfigError) -> None:
    """Print a usage error (user text is never parsed as markup; never broken inside a path or a
    command: the terminal wraps it) and exit 2."""
    field = next((error.field.replace(prefix, flag, 1) for prefix, flag in OPTION_FLAGS.items()
                  if error.field.startswith(prefix)), error.field)
    shown = ConfigError(field, error.problem) if field != error.field else error
    err.print(Text.assemble(("error: ", "red"), str(shown)), highlight=False, soft_wrap=True)
    sys.exit(EXIT_USAGE)


def load_policy(ref: str, settings: Settings) -> Policy:
    """A policy by name from the config's ``[policies]``, or from a JSON/TOML file."""
    if ref in settings.policies:
        data: Any = settings.policies[ref]
    elif Path(ref).suffix.lower() == ".toml":
        try:
            data = tomllib.loads(Path(ref).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("--policy", f"cannot read {ref}: {exc}") from exc
    elif Path(ref).suffix.lower() == ".json":
        data = load_json_object(ref, "--policy")
    else:
        names = ", ".join(sorted(settings.policies)) or "none configured"
        raise ConfigError("--policy", f"{ref!r} is neither a configured policy ({names}) nor a .json/.toml file")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, prefix="--policy") from exc


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped a run ``run_id`` (None: before it started); ``resumable`` when
    another process can resume it (not on an in-process sandbox, whose jobs end with this process)."""

    def __init__(self, run_id: str | None, resumable: bool = True) -> None:
        self.run_id = run_id
        self.resumable = resumable
        super().__init__(run_id)


def _stop_on_signals() -> list[signal.Signals]:
    """SIGINT and SIGTERM cancel the running task (graceful: journals flush, sessions close)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
            installed.append(sig)
    return installed


def report_interrupted(error: Interrupted) -> None:
    """Print how to continue an interrupted run (the resume command only where it can work), and exit 130."""
    if error.run_id and error.resumable:
        err.print(f"interrupted; everything so far is in the journal. Resume with: deepsearch resume {error.run_id}",
                  highlight=False, markup=False, soft_wrap=True)  # one line: the command is copied as is
    elif error.run_id:
        err.print(f"interrupted; run {error.run_id} is in the journal as interrupted, but it cannot be resumed: it "
                  "ran on the in-process sandbox, whose emulators and jobs ended with this process. Run the command "
                  "again; to make sandbox runs resumable, start a standalone sandbox (deepsearch sandbox serve "
                  "--connection-file sb.json) and set DEEPSEARCH_SANDBOX=sb.json for the run and its resume.",
                  highlight=False, markup=False, soft_wrap=True)
    else:
        err.print("interrupted before the run started", highlight=False)
    sys.exit(EXIT_INTERRUPTED)


async def run_search(settings: Settings, fields: dict[str, Any], show_progress: bool,
                     policy: Policy | None = None, journal: Path | None = None,
                     resume: str | None = None, outputs: Sequence[tuple[Path, str]] = (),
                     cache: Mapping[str, Any] | None = None) -> SearchReport:
    """Run (or ``resume``) one search with live progress, journaled to ``journal``.

    ``cache``: the result-cache arguments of :meth:`Aggregator.start` (``cache``, ``cache_ttl_s``,
    ``refresh``) for a new run; None leaves the library's default (``[cache] ttl_s``).

    ``outputs`` (path, flag) are the files the command writes afterwards: checked (and their folders
    created) once the request is validated, before anything is sent (see :func:`prepare_output`).

    Raises:
        ConfigError: an invalid request, or an output that cannot be written; nothing was sent.
        Interrupted: SIGINT/SIGTERM stopped it; everything done so far is in the journal.
    """
    installed = _stop_on_signals()
    try:
        return await _run_search(settings, fields, show_progress, policy, journal, resume, outputs, cache or {})
    except asyncio.CancelledError:
        raise Interrupted(_last_run_id.get() or resume, _resumable.get()) from None
    finally:
        for sig in installed:
            asyncio.get_running_loop().remove_signal_handler(sig)


_last_run_id: ContextVar[str | None] = ContextVar("_last_run_id", default=None)  # the run being shown
_resumable: ContextVar[bool] = ContextVar("_resumable", default=True)  # can another process resume it?


async def _run_search(settings: Settings, fields: dict[str, Any], show_progress: bool, policy: Policy | None,
                      journal: Path | None, resume: str | None, outputs: Sequence[tuple[Path, str]],
                      cache: Mapping[str, Any]) -> SearchReport:
    async with journal_store(settings.database, journal) as store, Aggregator(settings, job_store=store) as agg:
        _resumable.set(not agg.on_ephemeral_sandbox)
        # planned and validated once, before anything is printed or sent (a resume on a fresh
        # in-process sandbox is refused there too)
        if resume is not None:
            run = agg.start(await agg.recorded_request(resume), policy=policy, run_id=resume)
        else:
            run = agg.start(policy=policy, **cache, **fields)
        for path, flag in outputs:  # a request that is refused creates no folder
            prepare_output(path, flag)
        announce(agg)
        view = ProgressView(live=show_progress and err.is_terminal, sandbox=agg.on_sandbox)
        report: SearchReport | None = None
        with Live(view, console=err, refresh_per_second=8, transient=True,
                  auto_refresh=view.live) if view.live else contextlib.nullcontext():
            event: Event
            async for event in run.events():
                if isinstance(event, RunStartedEvent):
                    _last_run_id.set(event.run_id)
                elif isinstance(event, ProgressEvent) and show_progress:
                    view.update(event)
                elif isinstance(event, RecordsEvent) and view.live:
                    view.records(event)
                elif isinstance(event, OutcomeEvent) and not view.live and show_progress:
                    err.print(f"{event.outcome.provider}: {event.outcome.status}", highlight=False,
                              markup=False)
                elif isinstance(event, ReportEvent):
                    report = event.report
        assert report is not None
        return report


def journal_store(database: DatabaseSettings, journal: Path | None) -> BufferedJournal:
    """The journal of runs (not opened yet): PostgreSQL when ``database`` has a URL (``DEEPSEARCH_DATABASE_URL``),
    else the SQLite file ``journal`` (default ``$DEEPSEARCH_JOURNAL`` or the user data dir); see
    :func:`aggregator.db.open_journal`.

    Raises:
        ConfigError: ``--journal`` given while a database URL is set, or the driver is missing.
    """
    try:
        return open_journal(database, journal)
    except ConfigError as exc:
        if exc.field == "journal":
            raise ConfigError("--journal", exc.problem) from None
        raise


def settings_for(config: str | None, sandbox: bool, live: bool, verbose: int) -> Settings:
    configure_logging(verbose)
    if sandbox and live:
        raise click.UsageError("--sandbox and --live exclude each other")
    try:
        settings = load_settings(config)
    except KeyboardInterrupt:  # Ctrl-C while starting up: one line and 130, not click's "Aborted!" (exit 1)
        report_interrupted(Interrupted(None))
    return settings.with_target("sandbox" if sandbox else "live" if live else "auto")


def load_json_object(path: str, flag: str) -> dict[str, Any]:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise ConfigError(flag, f"file not found: {path}") from None
    except OSError as exc:  # a directory, no permission
        raise ConfigError(flag, f"cannot read {path}: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(flag, f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(flag, "expected a JSON object")
    return data


def json_option(value: str | None, flag: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(flag, f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(flag, "expected a JSON object")
    return data


def prepare_output(path: Path, flag: str) -> None:
    """Check that ``path`` can be written before anything is paid for (``--out``'s extension is checked
    when the flag is parsed): not a folder, its folder created if missing, and a file can be created there
    (a real probe: permission bits say nothing for root, ACLs or read-only mounts) or the existing file opened.

    Raises:
        ConfigError: naming ``flag`` and what is wrong with the path.
    """
    if path.is_dir():
        raise ConfigError(flag, f"{path} is a folder; name a file")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(flag, f"cannot create the folder {folder}: a file has that name") from None
    except OSError as exc:
        raise ConfigError(flag, f"cannot create the folder {folder}: {exc.strerror or exc}") from exc
    try:
        if path.exists():
            with path.open("ab"):  # writable as it is (not truncated, not changed)
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".deepsearch-check-"):
                pass
    except OSError as exc:
        raise ConfigError(flag, f"cannot write {path}: {exc.strerror or exc}") from exc


def write_output(report: SearchReport, path: Path, flag: str, write: Callable[[], Any],
                 journal: Path | None = None) -> Any:
    """``write()`` the file of ``flag``; when it fails (after the run), say that the run is kept in the
    journal and how to get it (``deepsearch show RUN_ID --out FILE``), and exit 1."""
    try:
        prepare_output(path, flag)
        return write()
    except (OSError, ConfigError) as exc:
        reason = exc.problem if isinstance(exc, ConfigError) else (exc.strerror or str(exc))
        where = f" --journal {shlex.quote(str(journal))}" if journal is not None else ""
        records = path if flag == "--out" else path.with_suffix(".json")
        command = f"deepsearch show {report.run_id}{where} --out {shlex.quote(str(records))}"
        then = ("once the problem is fixed, write its records with" if flag == "--out"
                else f"the journal has its report and records (not this {flag} file), e.g.")
        err.print(f"error: {flag}: could not write {path}: {reason}. The run is kept in the journal; {then}: "
                  f"{command}", highlight=False, markup=False, soft_wrap=True)  # one line: the command copies as is
        sys.exit(EXIT_NOT_WRITTEN)


def say_if_empty(report: SearchReport) -> None:
    """Say plainly on stderr when a report has no record (stdout stays the data)."""
    if report.records:
        return
    answered = [o.provider for o in report.outcomes if o.status in ("found", "partial", "no_result")]
    if answered:
        err.print(f"no results: the search ran ({', '.join(answered)} answered) and returned no record",
                  highlight=False, markup=False, soft_wrap=True)
    else:
        err.print("no results: every provider failed or was skipped (see the outcomes)", highlight=False,
                  markup=False, soft_wrap=True)


def print_report(report: SearchReport, as_json: bool, out: Path | None, wall_s: float | None,
                 journal: Path | None = None) -> None:
    """The report (or its JSON) on stdout; ``wall_s``: the real seconds the run took (None: not recorded).
    On the sandbox the footer also gives the run's virtual seconds, labelled as such."""
    if as_json:
        sys.stdout.buffer.write(report_json(report) + b"\n")
        sys.stdout.flush()
    else:
        console = Console()
        console.print(records_table(report))
        if report.request.identity is not None:
            for record in report.records:
                console.print(profile_view(record))
        console.print(outcomes_table(report))
        answered = f", answered by {', '.join(report.answered_by)}" if report.answered_by else ""
        took = f"{wall_s:.1f} s wall time" if wall_s is not None else "wall time not recorded"
        if report.sandbox:
            took += f" ({report.elapsed_s:.1f} virtual s on the sandbox clock)"
        console.print(f"run {report.run_id}: {counted(len(report.records), 'record')}{answered}, "
                      f"{counted(float(report.total_credits), 'credit')}, {took}", highlight=False)
        if report.cached is not None:
            console.print(cached_line(report.cached), highlight=False, markup=False)
    say_if_empty(report)
    if out is not None:
        count = write_output(report, out, "--out", lambda: write_report(report, out), journal)
        err.print(f"wrote {counted(count, 'record')} to {out}", highlight=False)


def run_and_report(settings: Settings, fields: dict[str, Any], *, as_json: bool, out: Path | None,
                    no_progress: bool, policy: Policy | None = None, journal: Path | None = None,
                    resume: str | None = None, cache: Mapping[str, Any] | None = None) -> None:
    """Run (or resume) one search, print its report and exit with the documented code (``cache``: see
    :func:`run_search`)."""
    started = time.perf_counter()
    try:
        report = asyncio.run(run_search(settings, fields, show_progress=not no_progress, policy=policy,
                                        journal=journal, resume=resume, outputs=[(out, "--out")] if out else [],
                                        cache=cache))
    except ConfigError as exc:
        usage_error(exc)
    except Interrupted as stop:
        report_interrupted(stop)
    except KeyboardInterrupt:  # Ctrl-C before run_search took over the signals (asyncio.run's own handler)
        report_interrupted(Interrupted(resume))
    print_report(report, as_json, out, time.perf_counter() - started, journal)
    sys.exit(EXIT_OK if report.delivered else EXIT_ALL_FAILED)
