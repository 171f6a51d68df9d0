"""Provider comparison on one query: coverage, overlap, timing and cost, from a :class:`SearchReport`.

Per provider: results, unique results (records no other provider returned), overlap with each
other provider (records both returned, after entity resolution), field coverage (the share of its
records that carry email, LinkedIn, title, location... for people; domain, LinkedIn, size, HQ,
industry... for companies), time to first result, total time, credits and the error if any.
Times are the clock's seconds (virtual on the sandbox).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from aggregator.models import Company, Hit, Mode, Person, SearchReport

__all__ = ["COVERAGE_FIELDS", "Comparison", "ProviderComparison", "compare"]

COVERAGE_FIELDS: dict[Mode, dict[str, tuple[str, ...]]] = {
    "people": {"email": ("email",), "LinkedIn": ("linkedin_url",), "title": ("title",),
               "company": ("company_name",), "location": ("location", "city"), "phone": ("phone",)},
    "company": {"domain": ("domain",), "LinkedIn": ("linkedin_url",), "size": ("employee_count", "employee_range"),
                "HQ": ("hq_city", "hq_country", "hq_country_iso2"), "industry": ("industry", "categories"),
                "funding": ("funding_stage",), "description": ("description",)},
}


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
    error: str | None = None


class Comparison(BaseModel):
    """A comparison of every provider that took part in a run."""

    model_config = ConfigDict(frozen=True)

    query: str
    mode: Mode
    run_id: str
    sandbox: bool
    records: int
    elapsed_s: float
    providers: tuple[ProviderComparison, ...]
    fields: tuple[str, ...]


def _has(hit: Hit, names: tuple[str, ...]) -> bool:
    entity: Person | Company = hit.entity
    return any(getattr(entity, name, None) not in (None, "", ()) for name in names)


def compare(report: SearchReport) -> Comparison:
    """The comparison of ``report``'s providers (skipped providers are left out)."""
    mode = report.request.mode
    fields = COVERAGE_FIELDS[mode]
    ran = [o for o in report.outcomes if o.status != "skipped"]
    names = [o.provider for o in ran]
    rows = []
    for outcome in ran:
        mine = [r for r in report.records if outcome.provider in r.providers]
        hits = [h for r in mine for h in r.hits if h.provider == outcome.provider]
        coverage = {label: (sum(_has(h, attrs) for h in hits) / len(hits) if hits else 0.0)
                    for label, attrs in fields.items()}
        overlap = {other: sum(1 for r in mine if other in r.providers) for other in names if other != outcome.provider}
        started = (outcome.started_at - report.started_at).total_seconds() if outcome.started_at else None
        rows.append(ProviderComparison(
            provider=outcome.provider, status=outcome.status, results=len(mine),
            unique=sum(1 for r in mine if r.providers == (outcome.provider,)), overlap=overlap, coverage=coverage,
            started_s=started, time_to_first_result_s=outcome.time_to_first_result_s, total_s=outcome.elapsed_s,
            credits=outcome.credits, error=outcome.error.message if outcome.error else None,
        ))
    return Comparison(query=report.request.query, mode=mode, run_id=report.run_id, sandbox=report.sandbox,
                      records=len(report.records), elapsed_s=report.elapsed_s, providers=tuple(rows),
                      fields=tuple(fields))
