"""Provider comparison on one query: coverage, overlap, timing and cost, from a :class:`SearchReport`.

Per provider that ran: results, unique results (records no other provider returned), overlap with
each other provider (records both returned, after entity resolution), field coverage (the share of
its records that carry email, LinkedIn, title, location... for people; domain, LinkedIn, size, HQ,
industry... for companies), time to first result, total time, credits, credits per record and per
unique record, and the error or note if any. Providers the run skipped are listed apart, with the
reason (:attr:`Comparison.skipped`), and the merged records come along pre-sorted by consensus with a
per-field provenance summary (:attr:`Comparison.merged`).

Times are the run clock's seconds: virtual seconds of the time-scaled sandbox when
:attr:`Comparison.sandbox` is true, wall-clock seconds against live APIs.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from aggregator.models import Company, Hit, MergedRecord, Mode, Person, ProviderOutcome, SearchReport

__all__ = ["COVERAGE_FIELDS", "ComparedRecord", "Comparison", "ProviderComparison", "SkippedProvider", "compare"]

COVERAGE_FIELDS: dict[Mode, dict[str, tuple[str, ...]]] = {
    "people": {"email": ("email",), "LinkedIn": ("linkedin_url",), "title": ("title",),
               "company": ("company_name",), "location": ("location", "city"), "phone": ("phone",)},
    "company": {"domain": ("domain",), "LinkedIn": ("linkedin_url",), "size": ("employee_count", "employee_range"),
                "HQ": ("hq_city", "hq_country", "hq_country_iso2"), "industry": ("industry", "categories"),
                "funding": ("funding_stage",), "description": ("description",)},
}
NAME_FIELD: dict[Mode, tuple[str, ...]] = {"people": ("full_name",), "company": ("name",)}


class ProviderComparison(BaseModel):
    """One provider's figures in a comparison."""

    model_config = ConfigDict(frozen=True)

    provider: str
    status: str
    results: int = Field(description="Merged records this provider contributed to.")
    unique: int = Field(description="Records only this provider returned.")
    overlap: dict[str, int] = Field(default_factory=dict, description="Other provider -> records both returned.")
    coverage: dict[str, float] = Field(default_factory=dict, description="Field -> share of its records (0..1).")
    started_s: float | None = Field(None, description="Start, seconds after the run started.")
    time_to_first_result_s: float | None = None
    total_s: float | None = None
    credits: float = 0.0
    credits_per_record: float | None = Field(None, description="credits / results; None without results.")
    credits_per_unique: float | None = Field(
        None, description="credits / unique: what each record nobody else found cost; None without any.")
    error: str | None = None
    error_type: str | None = Field(None, description="The error's class name, e.g. 'AuthError'.")
    note: str | None = Field(None, description="What was partial, or the provider's remark.")


class SkippedProvider(BaseModel):
    """A provider the run did not start, and why (wrong mode, no API key, no filter search...)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    reason: str


class ComparedRecord(BaseModel):
    """One merged record as the comparison lists it: who found it and who supplied which field."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    name: str = Field(description="Full name or company name ('' when no provider gave one).")
    key: str = Field(description="Short identity: 'linkedin.com/in/<slug>', the domain, or the record id.")
    details: dict[str, str] = Field(
        description="Column -> value: title, company, location (people); size, HQ, industry, stage (companies).")
    found_by: dict[str, int] = Field(description="Provider -> its best rank for this record, best first.")
    consensus: int = Field(description="How many providers returned it.")
    provenance: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Field label -> providers that supplied the chosen value.")
    conflicts: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Field label -> providers whose value differs from the chosen one.")


class Comparison(BaseModel):
    """A comparison of every provider that took part in a run (and the ones it skipped)."""

    model_config = ConfigDict(frozen=True)

    query: str
    mode: Mode
    run_id: str
    sandbox: bool = Field(description="True: times are the sandbox's virtual seconds; else wall seconds.")
    records: int
    elapsed_s: float
    providers: tuple[ProviderComparison, ...] = Field(description="Providers that ran (skipped ones are not).")
    fields: tuple[str, ...]
    started_at: datetime | None = None
    credits: float = Field(0.0, description="Credits charged by every provider in the run.")
    credits_per_record: float | None = Field(None, description="credits / merged records; None without records.")
    skipped: tuple[SkippedProvider, ...] = Field((), description="Providers the run skipped, with the reason.")
    merged: tuple[ComparedRecord, ...] = Field((), description="Merged records, consensus first, then best rank.")


def _has(hit: Hit, names: tuple[str, ...]) -> bool:
    entity: Person | Company = hit.entity
    return any(getattr(entity, name, None) not in (None, "", ()) for name in names)


def _per(credits: float, count: int) -> float | None:
    return credits / count if count else None


def _short_key(record: MergedRecord) -> str:
    entity = record.entity
    value = entity.linkedin_url if isinstance(entity, Person) else (entity.domain or entity.linkedin_url)
    value = value or record.record_id
    for prefix in ("https://", "http://", "www."):
        value = value.removeprefix(prefix)
    return value.rstrip("/")


def _details(entity: Person | Company) -> dict[str, str]:
    if isinstance(entity, Person):
        return {"title": entity.title or "", "company": entity.company_name or "",
                "location": entity.location or ", ".join(x for x in (entity.city, entity.country) if x)}
    size = str(entity.employee_count) if entity.employee_count is not None else (entity.employee_range or "")
    hq = ", ".join(x for x in (entity.hq_city, entity.hq_country_iso2 or entity.hq_country) if x)
    return {"size": size, "HQ": hq, "industry": entity.industry or "", "stage": entity.funding_stage or ""}


def _by_label(record: MergedRecord, mode: Mode) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Provenance and conflicts of ``record`` keyed by the comparison's field labels (plus 'name')."""
    provenance: dict[str, tuple[str, ...]] = {}
    conflicts: dict[str, tuple[str, ...]] = {}
    for label, attrs in {"name": NAME_FIELD[mode], **COVERAGE_FIELDS[mode]}.items():
        chosen = next((a for a in attrs if a in record.field_provenance), None)
        if chosen is None:
            continue
        provenance[label] = tuple(sorted(record.field_provenance[chosen]))
        if chosen in record.conflicts:
            conflicts[label] = tuple(sorted(record.conflicts[chosen]))
    return provenance, conflicts


def compared_record(record: MergedRecord, mode: Mode) -> ComparedRecord:
    """``record`` as the comparison lists it."""
    entity = record.entity
    name = (entity.full_name if isinstance(entity, Person) else entity.name) or ""
    ranks: dict[str, int] = {}
    for hit in sorted(record.hits, key=lambda h: h.rank):
        ranks.setdefault(hit.provider, hit.rank)
    provenance, conflicts = _by_label(record, mode)
    return ComparedRecord(record_id=record.record_id, name=name, key=_short_key(record), details=_details(entity),
                          found_by=ranks, consensus=record.consensus, provenance=provenance, conflicts=conflicts)


def _provider_row(report: SearchReport, outcome: ProviderOutcome, names: list[str]) -> ProviderComparison:
    provider = outcome.provider
    fields = COVERAGE_FIELDS[report.request.mode]
    mine = [r for r in report.records if provider in r.providers]
    hits = [h for r in mine for h in r.hits if h.provider == provider]
    coverage = {label: (sum(_has(h, attrs) for h in hits) / len(hits) if hits else 0.0)
                for label, attrs in fields.items()}
    overlap = {other: sum(1 for r in mine if other in r.providers) for other in names if other != provider}
    unique = sum(1 for r in mine if r.providers == (provider,))
    started = (outcome.started_at - report.started_at).total_seconds() if outcome.started_at else None
    return ProviderComparison(
        provider=provider, status=outcome.status, results=len(mine), unique=unique, overlap=overlap,
        coverage=coverage, started_s=started, time_to_first_result_s=outcome.time_to_first_result_s,
        total_s=outcome.elapsed_s, credits=outcome.credits, credits_per_record=_per(outcome.credits, len(mine)),
        credits_per_unique=_per(outcome.credits, unique),
        error=outcome.error.message if outcome.error else None,
        error_type=outcome.error.type if outcome.error else None, note=outcome.note,
    )


def compare(report: SearchReport) -> Comparison:
    """The comparison of ``report``'s providers (skipped ones apart, in :attr:`Comparison.skipped`)."""
    mode = report.request.mode
    ran = [o for o in report.outcomes if o.status != "skipped"]
    names = [o.provider for o in ran]
    skipped = tuple(SkippedProvider(provider=o.provider, reason=o.note or (o.error.message if o.error else ""))
                    for o in report.outcomes if o.status == "skipped")
    ordered = sorted(report.records, key=lambda r: (-r.consensus, r.best_rank, r.record_id))
    return Comparison(
        query=report.request.query, mode=mode, run_id=report.run_id, sandbox=report.sandbox,
        records=len(report.records), elapsed_s=report.elapsed_s,
        providers=tuple(_provider_row(report, o, names) for o in ran), fields=tuple(COVERAGE_FIELDS[mode]),
        started_at=report.started_at, credits=report.total_credits,
        credits_per_record=_per(report.total_credits, len(report.records)), skipped=skipped,
        merged=tuple(compared_record(r, mode) for r in ordered),
    )
