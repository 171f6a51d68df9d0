"""Events a run emits while it works (``Aggregator.stream``): progress, records, outcomes.

- :class:`RunStartedEvent` — the run's id (first event; ``resumed`` when it continues a run).
- :class:`ProgressEvent` — a provider's phase changed or it reported progress.
- :class:`HitsEvent` — new records arrived from one provider (a page, a download, a profile).
- :class:`RecordsEvent` — the merged records those hits created or changed (entity resolution runs
  incrementally as hits arrive), the record ids they superseded, and the running total.
- :class:`OutcomeEvent` — a provider finished (any status).
- :class:`ReportEvent` — the run finished; carries the :class:`~aggregator.models.SearchReport`.
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


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    provider: str
    phase: Phase
    message: str | None = None
    results_so_far: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class HitsEvent:
    provider: str
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class RecordsEvent:
    changed: tuple[MergedRecord, ...]
    removed: tuple[str, ...]
    total: int


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    outcome: ProviderOutcome


@dataclass(frozen=True, slots=True)
class ReportEvent:
    report: SearchReport


Event = RunStartedEvent | ProgressEvent | HitsEvent | RecordsEvent | OutcomeEvent | ReportEvent
