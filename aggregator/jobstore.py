"""The job store: where the core records provider jobs *before* and *after* each step.

The scheduler writes, in order: the idempotency key of a submit **before** the submit call
(:meth:`JobStore.record_submit_intent`), the provider's job reference once the submit returned,
every fetch checkpoint, and the final state. A crashed run can then be resumed without starting a
paid job twice: a key without a job means "submit outcome unknown — replay with the same key".

:class:`InMemoryJobStore` keeps this in a dict (one process, no durability); the SQLite journal
(issue "durable runs") implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from aggregator.contract import JobRef
from aggregator.models import SearchRequest

__all__ = ["InMemoryJobStore", "JobRecord", "JobStore", "JobStoreState"]

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


class InMemoryJobStore:
    """A :class:`JobStore` in a dict. ``records`` is public for inspection in tests."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], JobRecord] = {}

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
