"""The job store: where the core records provider jobs *before* and *after* each step.

The scheduler writes, in order: the idempotency key of a submit **before** the submit call
(:meth:`JobStore.record_submit_intent`), the provider's job reference once the submit returned,
every fetch checkpoint, and the final state. A crashed run can then be resumed without starting a
paid job twice: a key without a job means "submit outcome unknown — replay with the same key".

:class:`InMemoryJobStore` keeps this in a dict (one process, no durability); the SQLite journal
(issue "durable runs") implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from aggregator.contract import JobRef
from aggregator.models import Hit, ProviderOutcome, SearchReport, SearchRequest

__all__ = ["InMemoryJobStore", "JobRecord", "JobStore", "JobStoreState", "RunState", "RunSummary"]

JobStoreState = Literal["submitting", "submitted", "ready", "done", "failed"]


@dataclass(frozen=True)
class JobRecord:
    """What is known about one provider job of one run."""

    run_id: str
    provider: str
    idempotency_key: str
    request: SearchRequest
    state: JobStoreState = "submitting"
    job: JobRef | None = None
    checkpoint: Mapping[str, Any] | None = None
    history: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RunSummary:
    """One line of ``deepsearch runs``."""

    run_id: str
    created_at: datetime
    status: str
    query: str
    mode: str
    providers: list[str]
    records: int


@dataclass(frozen=True)
class RunState:
    """Everything a store knows about one run: enough to show or resume it."""

    run_id: str
    status: str
    request: SearchRequest
    jobs: dict[str, JobRecord]
    hits: dict[str, list[Hit]]
    outcomes: list[ProviderOutcome]
    report: SearchReport | None


class JobStore(Protocol):
    """Where the scheduler records jobs: key before submit, job after, checkpoints, final state."""

    async def record_submit_intent(
        self, run_id: str, provider: str, idempotency_key: str, request: SearchRequest
    ) -> None:
        """Persist the key before the submit call is made."""
        ...

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None: ...

    async def record_checkpoint(self, run_id: str, provider: str, checkpoint: Mapping[str, Any]) -> None: ...

    async def record_state(self, run_id: str, provider: str, state: JobStoreState) -> None: ...

    async def get(self, run_id: str, provider: str) -> JobRecord | None: ...

    async def record_run(self, run_id: str, request: SearchRequest, created_at: datetime) -> None: ...

    async def record_hits(self, run_id: str, provider: str, hits: Sequence[Hit]) -> None:
        """Append hits; called before the checkpoint that follows them (kept consistent)."""
        ...

    async def hits(self, run_id: str, provider: str) -> list[Hit]: ...

    async def record_outcome(self, run_id: str, outcome: ProviderOutcome) -> None: ...

    async def finish_run(self, run_id: str, status: str, report: SearchReport | None) -> None: ...

    async def runs(self, limit: int = 50) -> list[RunSummary]: ...

    async def run(self, run_id: str) -> RunState | None: ...


class InMemoryJobStore:
    """A :class:`JobStore` in a dict. ``records`` is public for inspection in tests."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], JobRecord] = {}
        self._runs: dict[str, tuple[SearchRequest, datetime, str, SearchReport | None]] = {}
        self._hits: dict[tuple[str, str], list[Hit]] = {}
        self._outcomes: dict[str, dict[str, ProviderOutcome]] = {}

    def _update(self, run_id: str, provider: str, **changes: Any) -> None:
        record = self.records[(run_id, provider)]
        event = str(changes.get("state", "checkpoint"))
        self.records[(run_id, provider)] = replace(record, history=(*record.history, event), **changes)

    async def record_submit_intent(
        self, run_id: str, provider: str, idempotency_key: str, request: SearchRequest
    ) -> None:
        self.records[(run_id, provider)] = JobRecord(
            run_id, provider, idempotency_key, request, history=("submitting",)
        )

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None:
        self._update(run_id, provider, state="submitted", job=job)

    async def record_checkpoint(self, run_id: str, provider: str, checkpoint: Mapping[str, Any]) -> None:
        self._update(run_id, provider, checkpoint=dict(checkpoint))

    async def record_state(self, run_id: str, provider: str, state: JobStoreState) -> None:
        self._update(run_id, provider, state=state)

    async def get(self, run_id: str, provider: str) -> JobRecord | None:
        return self.records.get((run_id, provider))

    async def record_run(self, run_id: str, request: SearchRequest, created_at: datetime) -> None:
        self._runs.setdefault(run_id, (request, created_at, "running", None))  # a run is recorded once

    async def record_hits(self, run_id: str, provider: str, hits: Sequence[Hit]) -> None:
        self._hits.setdefault((run_id, provider), []).extend(hits)

    async def hits(self, run_id: str, provider: str) -> list[Hit]:
        return list(self._hits.get((run_id, provider), []))

    async def record_outcome(self, run_id: str, outcome: ProviderOutcome) -> None:
        self._outcomes.setdefault(run_id, {})[outcome.provider] = outcome

    async def finish_run(self, run_id: str, status: str, report: SearchReport | None) -> None:
        request, created, _, _ = self._runs[run_id]
        self._runs[run_id] = (request, created, status, report)

    async def runs(self, limit: int = 50) -> list[RunSummary]:
        summaries = []
        for run_id, (request, created, status, _) in self._runs.items():
            providers = sorted(p for r, p in self.records if r == run_id)
            count = sum(len(h) for (r, _), h in self._hits.items() if r == run_id)
            summaries.append(RunSummary(run_id, created, status, request.query, request.mode, providers, count))
        return sorted(summaries, key=lambda s: s.created_at, reverse=True)[:limit]

    async def run(self, run_id: str) -> RunState | None:
        if run_id not in self._runs:
            return None
        request, _, status, report = self._runs[run_id]
        jobs = {p: rec for (r, p), rec in self.records.items() if r == run_id}
        hits = {p: list(h) for (r, p), h in self._hits.items() if r == run_id}
        return RunState(run_id, status, request, jobs, hits, list(self._outcomes.get(run_id, {}).values()), report)
