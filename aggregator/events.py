"""Events a run emits while it works (``Aggregator.stream``): progress, records, outcomes.

- :class:`RunStartedEvent` — the run's id (first event; ``resumed`` when it continues a run).
- :class:`ProgressEvent` — a provider's phase changed or it reported progress.
- :class:`HitsEvent` — new records arrived from one provider (a page, a download, a profile).
- :class:`RecordsEvent` — the merged records those hits created or changed (entity resolution runs
  incrementally as hits arrive), the record ids they superseded, and the running total.
- :class:`OutcomeEvent` — a provider finished (any status).
- :class:`ReportEvent` — the run finished; carries the :class:`~aggregator.models.SearchReport`.

Every event prints as one short line (``print(event)``): the events that carry hits, records, an
outcome or a report show counts and statuses, not their payload (a report's ``repr`` would be
hundreds of kilobytes); the payload is on the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aggregator.models import Hit, MergedRecord, ProviderOutcome, SearchReport

__all__ = ["Event", "HitsEvent", "OutcomeEvent", "Phase", "ProgressEvent", "RecordsEvent", "ReportEvent",
           "RunStartedEvent"]

Phase = Literal["waiting", "submitting", "queued", "running", "fetching", "done", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class RunStartedEvent:
    run_id: str
    resumed: bool = False


@dataclass(frozen=True, slots=True, repr=False)
class ProgressEvent:
    provider: str
    phase: Phase
    message: str | None = None
    results_so_far: int = 0
    elapsed_s: float = 0.0

    def __repr__(self) -> str:
        message = f", message={self.message!r}" if self.message else ""
        return (f"ProgressEvent(provider={self.provider!r}, phase={self.phase!r}{message}, "
                f"results_so_far={self.results_so_far}, elapsed_s={self.elapsed_s:.1f})")


@dataclass(frozen=True, slots=True, repr=False)
class HitsEvent:
    provider: str
    hits: tuple[Hit, ...]

    def __repr__(self) -> str:
        return f"HitsEvent(provider={self.provider!r}, hits={len(self.hits)})"


@dataclass(frozen=True, slots=True, repr=False)
class RecordsEvent:
    changed: tuple[MergedRecord, ...]
    removed: tuple[str, ...]
    total: int

    def __repr__(self) -> str:
        return f"RecordsEvent(changed={len(self.changed)}, removed={len(self.removed)}, total={self.total})"


@dataclass(frozen=True, slots=True, repr=False)
class OutcomeEvent:
    outcome: ProviderOutcome

    def __repr__(self) -> str:
        o = self.outcome
        error = f", error={o.error.type}" if o.error is not None else ""
        return f"OutcomeEvent(provider={o.provider!r}, status={o.status!r}, records={o.records}{error})"


@dataclass(frozen=True, slots=True, repr=False)
class ReportEvent:
    report: SearchReport

    def __repr__(self) -> str:
        r = self.report
        outcomes = ",".join(f"{o.provider}:{o.status}" for o in r.outcomes)
        return f"ReportEvent(run_id={r.run_id!r}, records={len(r.records)}, outcomes={outcomes})"


Event = RunStartedEvent | ProgressEvent | HitsEvent | RecordsEvent | OutcomeEvent | ReportEvent
