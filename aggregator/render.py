"""Rendering a :class:`~aggregator.models.SearchReport`: terminal tables and output files.

- :func:`records_table` / :func:`outcomes_table` / :func:`runs_table` — rich tables for the terminal.
  They stay readable at 80 columns: a table too wide for the terminal (a column would be cut to an
  ellipsis or dropped) switches to a narrow layout (:class:`FittedTable`); nothing is cut.
- :func:`write_report` — ``.json`` (the whole report), ``.jsonl`` (one merged record per line),
  ``.csv`` (one flattened row per merged record), chosen by the file's extension.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aggregator.cache import cache_age
from aggregator.compare import Comparison
from aggregator.errors import ConfigError
from aggregator.jobstore import SHORT_RUN_ID
from aggregator.models import (
    CacheInfo,
    Company,
    FieldValues,
    FilterCapabilities,
    MergedRecord,
    Person,
    SearchReport,
)

if TYPE_CHECKING:
    from aggregator.jobstore import RunSummary

__all__ = [
    "OUTPUT_SUFFIXES",
    "FittedTable",
    "cached_line",
    "comparison_tables",
    "counted",
    "fields_table",
    "flat_record",
    "outcomes_table",
    "profile_view",
    "records_table",
    "report_json",
    "runs_table",
    "values_table",
    "write_report",
]

OUTPUT_SUFFIXES = (".json", ".jsonl", ".csv")


def counted(count: float, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: ``"1 record"``, ``"2 records"``, ``"0 records"``,
    ``"1 person"`` (``plural="people"``), ``"1.5 credits"``. Whole floats print without ``.0``."""
    shown = f"{count:g}" if isinstance(count, float) else str(count)
    return f"{shown} {noun if count == 1 else plural or noun + 's'}"


_UNBOUNDED = 100_000  # a width no terminal has: what each column needs when nothing squeezes it


class FittedTable(Table):
    """A table that renders :attr:`narrow` (a layout made for narrow terminals) instead of itself when
    the console cannot give every column its longest word: rich would otherwise cut cells to an
    ellipsis, break words or drop whole columns. Without ``narrow`` it is a plain :class:`Table`."""

    narrow: RenderableType | None = None

    def fits(self, console: Console, options: ConsoleOptions) -> bool:
        """Whether every column gets at least its longest word at ``options.max_width``."""
        natural = Table.__rich_measure__(self, console, options.update_width(_UNBOUNDED))
        return natural.minimum <= options.max_width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.narrow is not None and not self.fits(console, options):
            yield self.narrow
            return
        yield from super().__rich_console__(console, options)


def _compact(title: str | None = None, caption: str | None = None) -> FittedTable:
    """A table for narrow terminals: a rule under the header, no vertical borders, one space between
    columns (plus their separator), the caption left-aligned under it."""
    return FittedTable(title=title, caption=caption, caption_justify="left", header_style="bold",
                       box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def _joined(*parts: Any, sep: str = " · ") -> str:
    return sep.join(str(p) for p in parts if p not in (None, "", ()))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _short_linkedin(url: str | None) -> str | None:
    return url.split("linkedin.com/", 1)[-1] if url else None


def _graded(record: MergedRecord) -> tuple[str, str]:
    """``("fit 5 · saas 4", "best explanation…")`` from the record's criterion evidence."""
    items = [e for hit in record.hits for e in hit.evidence if e.kind == "criterion" and e.grade]
    grades = " · ".join(f"{e.key} {e.grade}" for e in items)
    best = max(items, key=lambda e: e.grade or 0, default=None)
    why = (best.text or "") if best else ""
    return grades, why[:90] + ("…" if len(why) > 90 else "")


def _record_row(record: MergedRecord, graded: bool) -> list[Any]:
    entity = record.entity
    if isinstance(entity, Person):
        return [entity.full_name, entity.title, entity.company_name, entity.location,
                _short_linkedin(entity.linkedin_url)]
    assert isinstance(entity, Company)
    hq = ", ".join(x for x in (entity.hq_city, entity.hq_country_iso2 or entity.hq_country) if x)
    size = entity.employee_count if entity.employee_count is not None else entity.employee_range
    row: list[Any] = [entity.name, entity.domain, entity.industry, size, hq, entity.funding_stage]
    return row + list(_graded(record)) if graded else row


def records_table(report: SearchReport, limit: int | None = None) -> Table:
    """The merged records as a table (people or company columns by the request's mode).

    Company tables gain ``Grades`` and ``Why`` columns when providers graded criteria (Extruct);
    columns empty in every row are left out.
    """
    people = report.request.mode == "people"
    graded = not people and any(
        e.kind == "criterion" for r in report.records for h in r.hits for e in h.evidence)
    found = (counted(len(report.records), "person", "people") if people
             else counted(len(report.records), "company", "companies"))
    title = escape(f"{found} for “{report.request.query}”")
    cols = (["Name", "Title", "Company", "Location", "LinkedIn"] if people
            else ["Name", "Domain", "Industry", "Employees", "HQ", "Stage"])
    if graded:
        cols += ["Grades", "Why"]
    records = report.records[:limit] if limit else report.records
    rows = [[_cell(v) for v in _record_row(record, graded)] for record in records]
    keep = [i for i in range(len(cols)) if any(row[i] for row in rows)] or list(range(len(cols)))
    table = FittedTable(title=title, show_lines=False, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    for i in keep:
        table.add_column(cols[i], overflow="fold")
    table.add_column("Providers", style="cyan", overflow="fold")
    for n, (record, row) in enumerate(zip(records, rows, strict=True), start=1):
        table.add_row(str(n), *(escape(row[i]) for i in keep), ", ".join(record.providers))
    table.narrow = _record_cards(title, records, rows, people, graded)
    return table


def _record_cards(title: str, records: Sequence[MergedRecord], rows: list[list[str]], people: bool,
                  graded: bool) -> Table:
    """The records one under the other, a few lines each (the records table at a narrow width)."""
    cards = Table.grid(padding=(0, 1, 1, 0), collapse_padding=False, expand=True)  # a blank line after each
    cards.title = title
    cards.add_column(justify="right", style="dim")
    cards.add_column(overflow="fold")
    for n, (record, row) in enumerate(zip(records, rows, strict=True), start=1):
        card = Text()
        if people:
            name, role, company, location, linkedin = row
            card.append(name or record.record_id, "bold")
            card.append(("\n" + _joined(role, company)) if role or company else "")
            details = _joined(location, linkedin)
        else:
            name, domain, industry, size, hq, stage = row[:6]
            card.append(name or record.record_id, "bold")
            card.append(f" · {domain}" if domain else "")
            details = _joined(industry, f"{size} employees" if size else "", hq, stage)
        card.append(("\n" + details) if details else "")
        if graded and (row[6] or row[7]):
            card.append("\n" + _joined(row[6], row[7], sep="\n"))
        card.append("\n" + ", ".join(record.providers), "cyan")
        cards.add_row(str(n), card)
    return cards


def profile_view(record: MergedRecord) -> Table:
    """One looked-up person: their fields, then every section a provider returned, with sources."""
    table = Table(title=record.entity.full_name or record.record_id,  # type: ignore[union-attr]
                  show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in record.entity.model_dump().items():
        if name != "kind" and value not in (None, "", ()):
            table.add_row(name.replace("_", " "), _cell(value))
    newest = max(record.hits, key=lambda hit: hit.retrieved_at)
    for item in newest.evidence:
        sources = f"  ({', '.join(item.source_urls[:2])})" if item.source_urls else ""
        table.add_row(escape(f"§ {item.label or item.key}"), escape((item.text or "") + sources))
    return table


def fields_table(caps: FilterCapabilities) -> Table:
    """The fields a filter search accepts, with what each supports."""
    table = Table(title=f"{caps.provider} {caps.mode} filter fields (operators: {' '.join(caps.operators)})",
                  header_style="bold")
    for col in ("Field", "Type", "Nested path", "Sort", "Range", "Top values"):
        table.add_column(col)
    tick = {True: "yes", False: ""}
    for f in caps.fields:
        table.add_row(f.field, f.field_type, f.nested_path or "", tick[f.sortable], tick[f.rangeable],
                      tick[f.supports_top_values])
    return table


def values_table(values: FieldValues) -> Table:
    """Top values of one field, with counts, share of scope and the exact-match DSL snippet."""
    table = Table(title=f"{values.field}: top values of {values.total_scoped_documents} documents",
                  header_style="bold")
    for col, justify in (("Value", "left"), ("Count", "right"), ("Share", "right"), ("filter_snippet", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for v in values.values:
        snippet = orjson.dumps(v.filter_snippet).decode() if v.filter_snippet else ""
        table.add_row(escape("(missing)" if v.value is None else str(v.value)), str(v.count),
                      f"{v.percent_of_scope:.1%}", escape(snippet))
    return table


STATUS_STYLES = {"found": "green", "partial": "yellow", "no_result": "yellow", "failed": "red", "skipped": "dim"}
RUN_STYLES = {"done": "green", "running": "cyan", "interrupted": "yellow", "failed": "red"}


def _comparison_notes(comparison: Comparison) -> str:
    """The providers table's caption: why providers were skipped, failed or partial; the clock; the units."""
    lines = [f"{p.provider}: {p.status} — "
             + (f"{p.error_type}: {p.error}" if p.error and p.error_type else (p.error or p.note or ""))
             for p in comparison.providers if p.error or p.note]
    lines += [f"{s.provider}: skipped — {s.reason}" for s in comparison.skipped]
    clock = "virtual seconds (sandbox clock)" if comparison.sandbox else "wall-clock seconds"
    lines.append(f"Times in {clock}. Per unique: credits per record only that provider returned.")
    return escape("\n".join(lines))


def comparison_tables(comparison: Comparison) -> tuple[Table, Table, Table]:
    """The comparison as three terminal tables that stay readable at 80 columns.

    Per-provider figures (every provider, skipped ones included; the reasons in the caption), field
    coverage (fields down, providers across) and the overlap matrix. Headers are short and wrap onto
    two lines rather than being cut; nothing is truncated with an ellipsis.
    """
    main = Table(title=escape(f"Providers on “{comparison.query}” ({counted(comparison.records, 'merged record')})"),
                 header_style="bold", box=box.SIMPLE_HEAVY, caption=_comparison_notes(comparison),
                 caption_justify="left")
    for col in ("Provider", "Status", "Records", "Unique", "First\nresult", "Total\ntime", "Credits", "Per\nunique"):
        main.add_column(col, justify="left" if col in ("Provider", "Status") else "right", overflow="fold")
    for p in comparison.providers:
        main.add_row(escape(p.provider), f"[{STATUS_STYLES.get(p.status, '')}]{escape(p.status)}[/]",
                     str(p.results), str(p.unique),
                     f"{p.time_to_first_result_s:.1f}" if p.time_to_first_result_s is not None else "—",
                     f"{p.total_s:.1f}" if p.total_s is not None else "—", f"{p.credits:g}",
                     f"{p.credits_per_unique:.2f}" if p.credits_per_unique is not None else "—")
    for s in comparison.skipped:
        main.add_row(escape(s.provider), "skipped", *["—"] * 6, style="dim")
    names = [p.provider for p in comparison.providers]
    coverage = Table(title="Field coverage (share of each provider's records)", header_style="bold",
                     box=box.SIMPLE_HEAVY)
    coverage.add_column("Field", overflow="fold")
    for name in names:
        coverage.add_column(escape(name), justify="right", overflow="fold")
    for field in comparison.fields:
        coverage.add_row(field, *(f"{p.coverage.get(field, 0):.0%}" for p in comparison.providers))
    overlap = Table(title="Overlap (records both returned; diagonal = its records)", header_style="bold",
                    box=box.SIMPLE_HEAVY)
    overlap.add_column("", overflow="fold")
    for name in names:
        overlap.add_column(escape(name), justify="right", overflow="fold")
    for p in comparison.providers:
        overlap.add_row(escape(p.provider),
                        *(str(p.results if n == p.provider else p.overlap.get(n, 0)) for n in names))
    return main, coverage, overlap


def outcomes_table(report: SearchReport) -> Table:
    """One row per provider: status, records, pages, credits, retries, time, error or note.

    The time column's header names its clock: ``virtual s`` on the sandbox, ``wall s`` otherwise. When
    the terminal is too narrow for the Note column, the notes (why a provider was skipped or failed)
    are printed under a compact table instead, with the clock.

    ``Recs`` counts the report's merged records the provider contributed to, i.e. people or
    companies, not hits: a lookup's partial and full profile of one person is 1. Where the provider's
    hits (``ProviderOutcome.records``) differ, they follow: ``1 (2 hits)``; so do hits the result
    left out (a strategy that kept another provider's answer, or the ``max_results`` cut).
    """
    unit = "virtual s" if report.sandbox else "wall s"
    merged = Counter(provider for record in report.records for provider in set(record.providers))
    clock = "virtual seconds (sandbox clock)" if report.sandbox else "wall-clock seconds"
    notes = [f"{o.provider}: {o.status} — {o.error.message if o.error else o.note}"
             for o in report.outcomes if o.error or o.note]
    table = FittedTable(title="Providers", header_style="bold")
    narrow = _compact("Providers", escape("\n".join([*notes, f"Times in {clock}."])))
    cards = Table.grid(padding=(0, 1), expand=True)  # narrower still: a few lines per provider
    cards.title = "Providers"
    cards.add_column(style="bold", no_wrap=True)
    cards.add_column(overflow="fold")
    numeric = ("Recs", "Pages", "Credits", "Retries", unit)
    for col in ("Provider", "Where", "Status", *numeric, "Note"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=col != "Note")
        if col != "Note":  # the compact table wraps "1 (2 hits)" and its time header rather than cut them
            narrow.add_column(col, justify="right" if col in numeric else "left",
                              no_wrap=col not in ("Recs", unit), overflow="fold")
    for o in report.outcomes:
        note = o.error.message if o.error else (o.note or "")
        recs = str(merged[o.provider])
        if merged[o.provider] != o.records:
            recs += f" ({counted(o.records, 'hit')})"
        cells = (escape(o.provider), "sandbox" if o.sandbox else "live",
                 f"[{STATUS_STYLES.get(o.status, '')}]{o.status}[/]", recs, str(o.pages), f"{o.credits:g}",
                 str(o.retries), f"{o.elapsed_s:.1f}" if o.elapsed_s is not None else "")
        table.add_row(*cells, escape(note))
        narrow.add_row(*cells)
        timing = f"{o.elapsed_s:.1f} {unit}" if o.elapsed_s is not None else ""
        figures = _joined(f"{recs} {'record' if merged[o.provider] == 1 else 'records'}", counted(o.pages, "page"),
                          counted(o.credits, "credit"), counted(o.retries, "retry", "retries"), timing)
        cards.add_row(escape(o.provider), f"[{STATUS_STYLES.get(o.status, '')}]{o.status}[/] · "
                      f"{'sandbox' if o.sandbox else 'live'}\n" + escape(figures + (f"\n{note}" if note else "")))
    narrow.narrow = cards
    table.narrow = narrow
    return table


def _local_time(moment: datetime) -> str:
    """A UTC time as the reader's local wall-clock time, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def runs_table(runs: Sequence[RunSummary], title: str | None = None) -> Table:
    """``deepsearch runs``: one line per run, readable at 80 columns.

    Run ids are shown by their shortest unique prefix (``show`` and ``resume`` accept it); creation
    times are local wall-clock time; ``Records`` counts merged records (people or companies, not
    provider hits), ``N so far`` for a run without a report yet (running or interrupted).
    """
    legend = ["Created: local wall-clock time. Records: merged records (\"so far\": the run has no report yet)."]
    if any(run.created_on != "wall clock" for run in runs):
        legend.append("* recorded before the journal kept wall-clock times: the run's own clock "
                      "(virtual, and ahead of real time, on the sandbox).")
    table = _compact(title, escape("\n".join(legend)))
    for col in ("Run", "Created", "Status", "Mode", "Query", "Providers", "Records"):
        table.add_column(col, justify="right" if col == "Records" else "left",
                         no_wrap=col in ("Run", "Status", "Mode"), overflow="fold")
    for run in runs:
        created = _local_time(run.created_at) + ("*" if run.created_on != "wall clock" else "")
        records = str(run.records) if run.records_final else f"{run.records} so far"
        table.add_row(run.short_id or run.run_id, created, f"[{RUN_STYLES.get(run.status, '')}]{run.status}[/]",
                      run.mode, escape(run.query), ", ".join(run.providers), records)
    return table


def cached_line(cached: CacheInfo) -> str:
    """What a cached report says under it: ``cached: answered from run 1a2b3c4d, 42 s old; 0 credits, no
    provider called``."""
    return (f"cached: answered from run {cached.run_id[:SHORT_RUN_ID]}, {cache_age(cached.age_s)} old; 0 credits, "
            "no provider called (--refresh runs it anew)")


def report_json(report: SearchReport) -> bytes:
    """The report as one JSON document (the ``--json`` output)."""
    return orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def flat_record(record: MergedRecord) -> dict[str, Any]:
    """A merged record as flat columns: entity fields, then record_id, providers, consensus."""
    row: dict[str, Any] = {k: _cell(v) for k, v in record.entity.model_dump().items() if k != "kind"}
    row.update(record_id=record.record_id, providers=";".join(record.providers),
               consensus=record.consensus, best_rank=record.best_rank)
    return row


def write_report(report: SearchReport, path: Path) -> int:
    """Write the report to ``path`` in the format of its extension; returns records written.

    Raises:
        ConfigError: the extension is not one of ``.json``, ``.jsonl``, ``.csv``.
    """
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError("--out", f"unsupported extension {suffix or '(none)'!r}; use .json, .jsonl or .csv")
    if suffix == ".json":
        path.write_bytes(report_json(report))
    elif suffix == ".jsonl":
        with path.open("wb") as handle:
            for record in report.records:
                handle.write(orjson.dumps(record.model_dump(mode="json")) + b"\n")
    else:
        rows = [flat_record(r) for r in report.records]
        fields = list(rows[0]) if rows else ["record_id", "providers"]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return len(report.records)
