"""A process crash at one durable step of the job store, for crash-and-resume tests.

:class:`CrashingStore` delegates every call to a real :class:`~aggregator.jobstore.JobStore` and
"kills the process" at one step of one provider's job (:data:`CrashPoint`):

- ``"intent"``: right after ``record_submit_intent`` returned: the idempotency key is journaled,
  the submit was never sent;
- ``"submitted"``: at ``record_submitted``: the submit was sent and answered, its answer (the job)
  is not journaled;
- ``"job"``: right after ``record_submitted`` returned: the job is journaled, never polled;
- ``"checkpoint"``: at the ``record_checkpoint`` that follows the ``page``-th page with hits: the
  page's hits are journaled, its checkpoint is not (a SQLite journal is flushed first, as another
  job's committed write would have done, so the hits are durable there too).

The crash is a :class:`SimulatedCrash`, a ``BaseException``: no ``except Exception`` in the product
turns it into an outcome, so the run (of one provider: other jobs would run on) dies where it
stands, as it would under SIGKILL. From then on
the store is dead: every call raises again, so no ``finally`` block can write anything a killed
process would not have written (the run's final state, an outcome). The :class:`Disk` the store
came from is told at once (:meth:`Disk.kill`): a :class:`SqliteJournal` loses what it had buffered
and not committed, as it would on a kill, and is closed; the next "process" opens the store again
with :meth:`Disk.open` (for the in-memory store, the same object stands for the disk).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from aggregator.contract import JobRef
from aggregator.jobstore import InMemoryJobStore, JobRecord, JobStore, JobStoreState, RunState, RunSummary
from aggregator.journal import BufferedJournal, SqliteJournal
from aggregator.models import Hit, ProviderOutcome, SearchReport, SearchRequest

__all__ = ["CrashPoint", "CrashingStore", "Disk", "MemoryDisk", "SimulatedCrash", "SqliteDisk"]

CrashPoint = Literal["intent", "submitted", "job", "checkpoint"]


class SimulatedCrash(BaseException):
    """The process died here. A BaseException, so that nothing in the product handles it."""


class Disk(Protocol):
    """Where a job store's durable state lives between two processes of one run."""

    kind: str

    async def open(self) -> JobStore:
        """The store as a new process opens it."""
        ...

    async def kill(self, store: JobStore) -> None:
        """The process that used ``store`` died: drop what it had not made durable."""
        ...

    async def close(self) -> None:
        """Release everything (test teardown)."""
        ...


class MemoryDisk:
    """An :class:`InMemoryJobStore` standing for a durable store: every write is durable at once."""

    kind = "memory"

    def __init__(self) -> None:
        self.store = InMemoryJobStore()

    async def open(self) -> JobStore:
        return self.store

    async def kill(self, store: JobStore) -> None:
        return None

    async def close(self) -> None:
        return None


class SqliteDisk:
    """A :class:`SqliteJournal` file; each :meth:`open` is a new journal on it (a new process)."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._opened: list[SqliteJournal] = []

    async def open(self) -> JobStore:
        journal = await SqliteJournal(self.path).open()
        self._opened.append(journal)
        return journal

    async def kill(self, store: JobStore) -> None:
        """What SIGKILL does to the journal: the buffered (uncommitted) hits and checkpoints are gone,
        what was committed stays. Waits for a timed flush already writing (it commits or not)."""
        assert isinstance(store, SqliteJournal)
        async with store._lock:
            store._pending.clear()
            store._buffered_hits = 0
        await store.close()  # nothing left to flush: closes the connection and stops the timer

    async def close(self) -> None:
        for journal in self._opened:
            await journal.close()


class CrashingStore:
    """A :class:`JobStore` over ``disk``'s store that crashes at ``point`` of ``provider``'s job.

    Args:
        store: the real store (from ``disk.open()``).
        disk: told when the process dies (:meth:`Disk.kill`).
        point: where to crash (see the module docstring).
        provider: the job to crash (other providers' calls just pass through).
        page: for ``"checkpoint"``: crash at the checkpoint of this page with hits (1-based).

    Attributes:
        crashed: whether the crash happened.
    """

    def __init__(self, store: JobStore, disk: Disk, point: CrashPoint, *, provider: str, page: int = 1) -> None:
        self.store = store
        self.disk = disk
        self.point = point
        self.provider = provider
        self.page = page
        self.crashed = False
        self._pages_with_hits = 0
        self._last_page_had_hits = False

    def _alive(self) -> None:
        if self.crashed:
            raise SimulatedCrash("the process is dead: nothing more reaches the store")

    async def _die(self) -> None:
        self.crashed = True
        await self.disk.kill(self.store)
        raise SimulatedCrash(f"crashed at {self.point} of {self.provider}")

    # -- the steps a crash can hit --------------------------------------------------------------
    async def record_submit_intent(self, run_id: str, provider: str, idempotency_key: str,
                                   request: SearchRequest) -> None:
        self._alive()
        await self.store.record_submit_intent(run_id, provider, idempotency_key, request)
        if self.point == "intent" and provider == self.provider:
            await self._die()

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None:
        self._alive()
        if self.point == "submitted" and provider == self.provider:
            await self._die()
        await self.store.record_submitted(run_id, provider, job)
        if self.point == "job" and provider == self.provider:
            await self._die()

    async def record_hits(self, run_id: str, provider: str, hits: Sequence[Hit]) -> None:
        self._alive()
        await self.store.record_hits(run_id, provider, hits)
        if provider == self.provider:
            self._last_page_had_hits = bool(hits)
            self._pages_with_hits += bool(hits)

    async def record_checkpoint(self, run_id: str, provider: str, checkpoint: Mapping[str, Any]) -> None:
        self._alive()
        if (self.point == "checkpoint" and provider == self.provider and self._last_page_had_hits
                and self._pages_with_hits == self.page):
            if isinstance(self.store, BufferedJournal):
                await self.store.flush()  # the page's hits reached the disk (any committed write does that)
            await self._die()
        await self.store.record_checkpoint(run_id, provider, checkpoint)

    # -- everything else passes through while alive ----------------------------------------------
    async def record_state(self, run_id: str, provider: str, state: JobStoreState) -> None:
        self._alive()
        await self.store.record_state(run_id, provider, state)

    async def get(self, run_id: str, provider: str) -> JobRecord | None:
        self._alive()
        return await self.store.get(run_id, provider)

    async def record_run(self, run_id: str, request: SearchRequest, created_at: datetime) -> None:
        self._alive()
        await self.store.record_run(run_id, request, created_at)

    async def hits(self, run_id: str, provider: str) -> list[Hit]:
        self._alive()
        return await self.store.hits(run_id, provider)

    async def record_outcome(self, run_id: str, outcome: ProviderOutcome) -> None:
        self._alive()
        await self.store.record_outcome(run_id, outcome)

    async def finish_run(self, run_id: str, status: str, report: SearchReport | None) -> None:
        self._alive()
        await self.store.finish_run(run_id, status, report)

    async def runs(self, limit: int = 50) -> list[RunSummary]:
        self._alive()
        return await self.store.runs(limit)

    async def run(self, run_id: str) -> RunState | None:
        self._alive()
        return await self.store.run(run_id)
