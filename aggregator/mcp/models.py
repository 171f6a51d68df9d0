"""What the MCP tools take and return: pydantic types, so every tool publishes a JSON ``inputSchema``
and an ``outputSchema`` and answers with structured content.

Arguments are annotated types (``Query``, ``MaxResults``...) that the tools' signatures share; the SDK
builds each tool's input model from them. Results are frozen models:

- :class:`SearchResult` — ``deep_search``, ``filter_search`` and ``get_search``: the run's status, its
  merged records (:class:`AgentRecord`: the entity, the providers that found it, per-field provenance,
  consensus and each provider's hit without its raw payload), every provider's outcome and its credits.
- :class:`StartedSearch` — ``start_deep_search`` / ``resume_search``: the run id, at once.
- :class:`ComparisonResult`, :class:`LookupResult`, :class:`FilterFieldsResult`, :class:`FilterValuesResult`.

Every result has ``credits``: what the call (or the run it describes) was charged, per the providers'
cost models; free calls say 0. Durations are seconds (names end in ``_s``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from aggregator.compare import Comparison
from aggregator.models import (
    MAX_RESULTS_LIMIT,
    CacheInfo,
    Entity,
    Evidence,
    FieldValues,
    FilterCapabilities,
    MergedRecord,
    Person,
    ProviderOutcome,
    SearchReport,
)

__all__ = [
    "AgentRecord",
    "Budget",
    "ComparisonResult",
    "DeadlineS",
    "FilterFieldsResult",
    "FilterValuesResult",
    "HitSource",
    "LookupResult",
    "MaxResults",
    "MinResults",
    "ModeArg",
    "Providers",
    "Query",
    "RunStatus",
    "SearchResult",
    "StartedSearch",
    "StrategyArg",
    "agent_records",
]

# -- arguments (shared by the tools' signatures) ---------------------------------------------------------
Query = Annotated[str, Field(min_length=1, max_length=2000,
                             description="What to find, in words, e.g. 'VP of Engineering at Series B SaaS "
                                         "startups in New York'.")]
ModeArg = Annotated[Literal["people", "company"], Field(description="Search people or companies.")]
MaxResults = Annotated[int | None, Field(ge=1, le=MAX_RESULTS_LIMIT,
                                         description="Records per provider and merged; default 100 "
                                                     "([run] max_results).")]
Providers = Annotated[list[str] | None, Field(
    description="Providers to use, in order (sixtyfour, extruct, orbit); default every capable one.")]
StrategyArg = Annotated[Literal["all", "fallback", "race"] | None, Field(
    description="all = fan out and merge (default); fallback = in order until min_results; race = hedged.")]
MinResults = Annotated[int | None, Field(ge=1, description="fallback/race only: records that satisfy the run.")]
Budget = Annotated[float | None, Field(
    gt=0, allow_inf_nan=False,
    description="Credits this call may spend (no paid call that would pass it is made); default and maximum: "
                "the server's [mcp] max_credits_per_call, and never more than the session has left.")]
DeadlineS = Annotated[float | None, Field(gt=0, le=86_400, allow_inf_nan=False,
                                          description="Overall deadline in seconds (provider time: virtual "
                                                      "seconds on the sandbox); default [run] deadline_s.")]

RunStatus = Literal["running", "done", "failed", "interrupted"]
"""``done``: at least one provider delivered; ``failed``: none did; ``interrupted``: cancelled or its
process stopped (resumable where its jobs still exist); ``running``: not finished."""


# -- results ---------------------------------------------------------------------------------------------
class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class HitSource(_Result):
    """One provider's hit behind a merged record (its raw payload is left out: ``deepsearch show RUN_ID
    --json`` has it)."""

    provider: str
    provider_record_id: str = Field(description="The provider's id for this record.")
    rank: int = Field(description="1-based position in the provider's results.")
    score: float | None = Field(None, description="Provider relevance scaled to 0..1.")
    job_id: str | None = None
    source_urls: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()


class AgentRecord(_Result):
    """One real-world person or company after entity resolution across providers."""

    record_id: str = Field(description="Stable key: normalized LinkedIn URL, email or domain.")
    entity: Entity = Field(description="The consolidated person or company.")
    providers: tuple[str, ...] = Field(description="Providers that returned it, best rank first.")
    consensus: int = Field(description="How many providers returned it.")
    best_rank: int
    field_provenance: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Field -> providers that supplied the chosen value.")
    conflicts: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Field -> provider -> value, where providers disagree.")
    sources: tuple[HitSource, ...] = Field(description="Each provider's hit, best rank first.")


def agent_records(records: tuple[MergedRecord, ...] | list[MergedRecord]) -> tuple[AgentRecord, ...]:
    """Merged records as agents get them: everything but the providers' raw payloads."""
    return tuple(AgentRecord(
        record_id=r.record_id, entity=r.entity, providers=r.providers, consensus=r.consensus,
        best_rank=r.best_rank, field_provenance=r.field_provenance, conflicts=r.conflicts,
        sources=tuple(HitSource(provider=h.provider, provider_record_id=h.provider_record_id, rank=h.rank,
                                score=h.score, job_id=h.job_id, source_urls=h.source_urls, evidence=h.evidence)
                      for h in sorted(r.hits, key=lambda h: h.rank)),
    ) for r in records)


class SearchResult(_Result):
    """A search run: finished (``deep_search``, ``filter_search``) or as far as it got (``get_search``)."""

    run_id: str = Field(description="The run's id in the journal (get_search, `deepsearch show` take it).")
    status: RunStatus
    finished: bool = Field(description="True when the run has its final report.")
    active: bool = Field(False, description="True while this server process is running it.")
    query: str
    mode: Literal["people", "company"]
    sandbox: bool | None = Field(None, description="True when it ran on the sandbox (None: not known yet).")
    credits: float = Field(description="Credits the run was charged (so far: by the providers that finished).")
    budget: float | None = Field(None, description="The run's credit budget: it never spends more.")
    session_credits_left: float = Field(description="Credits this server session may still spend.")
    records: tuple[AgentRecord, ...] = Field(description="Merged records, best first (so far, when running).")
    outcomes: tuple[ProviderOutcome, ...] = Field(description="Each provider's outcome (so far, when running).")
    answered_by: tuple[str, ...] = ()
    elapsed_s: float | None = Field(None, description="Run clock seconds (virtual on the sandbox).")
    note: str | None = Field(None, description="What to do next, when there is something to do.")
    cached: CacheInfo | None = Field(
        None, description="Set when answered from the result cache: the earlier run (run_id) whose records these "
                          "are and its age in seconds; no provider was called and 0 credits were spent.")

    @classmethod
    def of_report(cls, report: SearchReport, budget: float | None, left: float) -> SearchResult:
        """A finished run's result."""
        return cls(run_id=report.run_id, status="done" if report.delivered else "failed", finished=True,
                   query=report.request.query, mode=report.request.mode, sandbox=report.sandbox,
                   credits=report.total_credits, budget=budget, session_credits_left=left,
                   records=agent_records(report.records), outcomes=report.outcomes,
                   answered_by=report.answered_by, elapsed_s=report.elapsed_s, cached=report.cached)


class StartedSearch(_Result):
    """A run started (or resumed) in the background; follow it with ``get_search``."""

    run_id: str
    status: RunStatus = "running"
    credits: float = Field(0.0, description="Charged so far: nothing (the run spends up to its budget).")
    budget: float = Field(description="Credits the run may spend; reserved from the session now.")
    session_credits_left: float
    providers: tuple[str, ...] = Field(description="Providers that will run.")
    skipped: tuple[ProviderOutcome, ...] = Field((), description="Providers that will not run, and why.")


class ComparisonResult(_Result):
    """``compare_providers``: coverage, overlap, speed and cost per provider on one query."""

    run_id: str
    credits: float
    budget: float
    session_credits_left: float
    comparison: Comparison


class LookupResult(_Result):
    """``lookup_person``: the person the identity signals point to, with every provider's records."""

    run_id: str
    status: RunStatus
    credits: float
    budget: float
    session_credits_left: float
    person: Person | None = Field(description="The best-ranked match, or None when nobody was found.")
    records: tuple[AgentRecord, ...]
    outcomes: tuple[ProviderOutcome, ...]


class FilterFieldsResult(_Result):
    """``filter_fields``: what a filter search accepts (free)."""

    credits: float = 0.0
    capabilities: FilterCapabilities


class FilterValuesResult(_Result):
    """``filter_values``: a field's top values with counts and ready DSL snippets (free)."""

    credits: float = 0.0
    values: FieldValues
