"""Deep-search tasks of the Sixtyfour emulator: lifecycle, idempotency, concurrency (contract §1).

A task's whole life is fixed when it starts and read off the virtual clock when observed (no
background work): ``queued`` for ``queue_s``, then ``running`` for a duration drawn per task in
``[duration_min_s, duration_max_s]`` (DOC "typical 30-120 s"), with ``current_phase`` 0..3
(INF names: Planning search / Searching candidates / Verifying matches / Finalizing results;
only "3 = Finalizing results" is documented) and ``iterations`` entries
``{iteration, results, elapsed_ms, message}`` (DOC shape, SK-search) appearing at evenly spaced
times; then ``completed`` (or ``failed`` at 60 % of the run, INF) with ``close_time``.

The result set is computed at start from the world (the job is deterministic), which is also
when credits are charged (INF: pricing is unpublished, contract §4.4; a job that will fail pays
only the per-search fee). ``search_id`` is the org's idempotency key (DOC "client-supplied search
ID for idempotent retries"): :class:`TaskStore` maps ``(org, search_id)`` to its task.

Exports (§1.4, :mod:`.export`) are tasks too (``kind="export"``): the same status
document and download path, export phase messages, no iterations; they are not indexed by
``search_id`` (that names the exported search) and do not count as in-flight deep searches.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from providers.sixtyfour.emulator.rows import Row

__all__ = ["EXPORT_PHASE_MESSAGES", "PHASE_MESSAGES", "Task", "TaskStore", "iso_z"]

PHASE_MESSAGES = ("Planning search", "Searching candidates", "Verifying matches",
                  "Finalizing results")
EXPORT_PHASE_MESSAGES = ("Fetching rows", "Writing CSV", "Uploading file", "Finalizing results")
FAIL_AT = 0.6  # INF: a failing task fails after 60 % of its run
FAILURE_MESSAGE = "Deep search failed: NL upstream transport error: connection reset by peer"


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, whole seconds (``"2026-02-18T10:00:00Z"``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Task:
    """One deep search. Times ``*_at`` are clock monotonic values (virtual seconds)."""

    task_id: str
    org: int
    mode: str
    query: str
    output_mode: str
    search_id: str
    found: tuple[Row, ...]  # the search's result set (capped, before exclusions)
    delivered: tuple[Row, ...]  # found minus the start's exclusions: CSV rows, total_results
    created_at: float
    start_time: datetime
    queue_s: float
    duration_s: float
    n_iterations: int
    error: str | None  # set when the task is destined to fail
    resource_handle_id: str | None
    forced_end_at: float | None = None
    kind: str = "deep_search"  # or "export" (POST /search/export, §1.4): same status document
    status_reads: int = 0  # status documents served (``complete_after_polls`` test hook)

    @property
    def run_start_at(self) -> float:
        natural = self.created_at + self.queue_s
        return natural if self.forced_end_at is None else min(natural, self.forced_end_at)

    @property
    def end_at(self) -> float:
        """When the task reaches its terminal status."""
        span = self.duration_s * (FAIL_AT if self.error else 1.0)
        natural = self.created_at + self.queue_s + span
        return natural if self.forced_end_at is None else min(natural, self.forced_end_at)

    def status(self, now: float) -> str:
        if now >= self.end_at:
            return "failed" if self.error else "completed"
        return "queued" if now < self.run_start_at else "running"

    def in_flight(self, now: float) -> bool:
        return self.status(now) in ("queued", "running")

    def status_doc(self, now: float) -> dict[str, Any]:
        """The ``AgenticSearchStatusResponse`` at ``now`` (contract §1.2)."""
        status = self.status(now)
        done = status in ("completed", "failed")
        observed = min(now, self.end_at)
        phase = self._phase(observed) if status != "queued" else None
        if status == "completed":
            phase = 3
        messages = EXPORT_PHASE_MESSAGES if self.kind == "export" else PHASE_MESSAGES
        return {
            "task_id": self.task_id,
            "status": status,
            "start_time": iso_z(self.start_time),
            "current_phase": phase,
            "progress_message": "Queued" if phase is None else messages[phase],
            "close_time": iso_z(self._wall(self.end_at)) if done else None,
            "resource_handle_id": self.resource_handle_id if status == "completed" else None,
            "total_results": len(self.delivered) if status == "completed" else None,
            "exported_count": self._exported() if status == "completed" else None,
            "error": self.error if status == "failed" else None,
            "search_id": self.search_id if status == "completed" else None,
            "iterations": self._iterations(observed, complete=status == "completed"),
        }

    def _wall(self, at: float) -> datetime:
        return self.start_time + timedelta(seconds=at - self.created_at)

    def _phase(self, at: float) -> int:
        elapsed = max(0.0, at - self.run_start_at)
        return min(3, int(4 * elapsed / self.duration_s))

    def _exported(self) -> int | None:
        # INF: nothing is exported in query_only mode.
        return len(self.delivered) if self.output_mode == "csv" else None

    def _iterations(self, at: float, *, complete: bool) -> list[dict[str, Any]]:
        elapsed = max(0.0, at - self.run_start_at)
        items = []
        for i in range(1, self.n_iterations + 1):
            due_s = self.duration_s * i / (self.n_iterations + 1)
            if due_s > elapsed and not complete:
                break
            results = round(len(self.found) * i / self.n_iterations)
            items.append({"iteration": i, "results": results,
                          "elapsed_ms": int(min(due_s, elapsed) * 1000),
                          "message": f"Iteration {i}: {results} candidates verified"})
        return items


@dataclass(frozen=True)
class Lifecycle:
    """Timing draws for a new task."""

    queue_s: float
    duration_s: float
    n_iterations: int
    fails: bool


def draw_lifecycle(
    task_id: str, *, queue_s: float, duration_min_s: float, duration_max_s: float,
    failure_rate: float, forced_failure: bool,
) -> Lifecycle:
    """Deterministic per-task timing (seeded by the task id)."""
    rng = random.Random(f"task:{task_id}")
    duration = rng.uniform(duration_min_s, duration_max_s)
    fails = forced_failure or rng.random() < failure_rate
    return Lifecycle(queue_s, duration, rng.randint(2, 5), fails)


class TaskStore:
    """All tasks of the emulator, indexed by id, by ``(org, search_id)`` and by resource handle."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self._by_search: dict[tuple[int, str], str] = {}
        self._by_handle: dict[str, str] = {}

    def add(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        if task.kind == "deep_search":  # an export's search_id names the search it exports
            self._by_search[(task.org, task.search_id)] = task.task_id
        if task.resource_handle_id:
            self._by_handle[task.resource_handle_id] = task.task_id

    def get(self, task_id: str, org: int) -> Task | None:
        """The org's task ``task_id`` (None for unknown ids and other orgs' tasks)."""
        task = self.tasks.get(task_id)
        return task if task is not None and task.org == org else None

    def by_search_id(self, org: int, search_id: str) -> Task | None:
        task_id = self._by_search.get((org, search_id))
        return self.tasks.get(task_id) if task_id else None

    def by_handle(self, org: int, handle: str) -> Task | None:
        task_id = self._by_handle.get(handle)
        return self.get(task_id, org) if task_id else None

    def in_flight(self, org: int, now: float) -> list[Task]:
        """The org's unfinished deep searches (INF: exports do not count against the 5)."""
        return [t for t in self.tasks.values()
                if t.org == org and t.kind == "deep_search" and t.in_flight(now)]

    def running_export(self, org: int, search_id: str, now: float) -> Task | None:
        """The org's unfinished export of ``search_id``, if any (§1.4: a second one is 409)."""
        return next((t for t in self.tasks.values()
                     if t.kind == "export" and t.org == org and t.search_id == search_id
                     and t.in_flight(now)), None)

    def concurrency_retry_after_s(self, org: int, now: float) -> float:
        """INF: virtual seconds until the org's earliest in-flight task is expected to end (>= 1)."""
        ends = [t.end_at - now for t in self.in_flight(org, now)]
        return max(1.0, math.ceil(min(ends))) if ends else 1.0
