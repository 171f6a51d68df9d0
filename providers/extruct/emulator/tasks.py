"""Discovery tasks of the Extruct emulator: the four-stage pipeline on the virtual clock (§3).

Everything is computed lazily from elapsed time (no background work). A task's pool, grades and
schedule are fixed when it is created; what an observer sees at time ``now`` is read off them:

- ``created`` for ``created_s`` (INF), then ``in_progress`` while the pipeline runs (§3, §10).
- The pipeline runs on *active* seconds ``tau`` (wall time while ``in_progress``): discovery
  finds pool candidates at ``discover_rate``; the pre-filter screens discovered ones at
  ``min(discover, enrich)`` rate and the survivors are ``enriched``; evaluation grades enriched
  candidates one after another at ``evaluate_rate`` (never before they are enriched). Hence
  ``discovered >= enriched >= evaluated >= num_results``, all monotone (§3.1 INF invariant).
- ``is_exhausted`` (DOC: pool depleted) turns true once every pool candidate is discovered and
  screened -- evaluation may still be running, so ``is_exhausted: true`` with
  ``status: "in_progress"`` is a real, lasting state (§3.2 contradiction, REPO behaviour).
- ``done`` once ``num_results`` reaches the target (evaluation stops there) or the pool is
  exhausted and all evaluated (§10.4). A resume raises the target and opens a new run segment
  from where the task stopped (§7). ``failed`` only for tasks drawn to fail (job_failure fault or
  ``failure_rate``), at ``fail_at`` of their natural run, with no error field (§3, UNK -> INF).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from providers.extruct.emulator.criteria import Criterion
from providers.extruct.emulator.grading import Score

__all__ = ["Evaluation", "Schedule", "Task", "TaskStore", "iso_z"]

_EPS = 1e-9


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, whole seconds (``"2026-03-01T10:15:00Z"``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, eq=False, slots=True)
class Evaluation:
    """One enriched candidate: its grades and when (active seconds) its evaluation finished."""

    company_id: str  # world true id
    result_id: str  # stable per task + company
    source: str  # web_search | linkedin | maps
    scores: dict[str, Score]
    relevance: int
    qualified: bool
    finished_at: float


@dataclass(frozen=True)
class Schedule:
    """When each stage reaches each candidate, in active seconds (pure, fixed at creation).

    Attributes:
        pool_size: candidates the discovery stage will find.
        discover_per_s: discovery rate (candidates per active second).
        screen_per_s: pre-filter/enrichment rate (``<= discover_per_s``).
        enriched_at: active second each enriched candidate is enriched, ascending.
        evaluations: enriched candidates in evaluation order (``finished_at`` ascending).
    """

    pool_size: int
    discover_per_s: float
    screen_per_s: float
    enriched_at: tuple[float, ...]
    evaluations: tuple[Evaluation, ...]
    _qualified_at: tuple[float, ...] = field(init=False, repr=False)
    _finished_at: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_finished_at", tuple(e.finished_at for e in self.evaluations))
        object.__setattr__(self, "_qualified_at",
                           tuple(e.finished_at for e in self.evaluations if e.qualified))

    @property
    def exhausted_at(self) -> float:
        """Active second the whole pool is discovered and screened."""
        return self.pool_size / self.screen_per_s

    def discovered(self, tau: float) -> int:
        return min(self.pool_size, math.floor(self.discover_per_s * tau + _EPS))

    def enriched(self, tau: float) -> int:
        return bisect.bisect_right(self.enriched_at, tau + _EPS)

    def evaluated(self, tau: float) -> int:
        return bisect.bisect_right(self._finished_at, tau + _EPS)

    def qualified(self, tau: float) -> int:
        return bisect.bisect_right(self._qualified_at, tau + _EPS)

    def stop_at(self, target: int) -> float:
        """Active second the task is done for ``target`` results (target reached, or the pool
        exhausted and every enriched candidate evaluated)."""
        if 0 < target <= len(self._qualified_at):
            return self._qualified_at[target - 1]
        last = self._finished_at[-1] if self._finished_at else 0.0
        return max(self.exhausted_at, last)


@dataclass
class Task:
    """One discovery task. ``*_at`` values without ``tau`` are clock monotonic seconds.

    ``segments`` are run segments ``(wall_start, tau_start)``: the pipeline advances one active
    second per virtual second from ``wall_start`` until it hits :meth:`limit_tau`.
    """

    task_id: str
    org: int
    seq: int
    query: str
    desired_num_results: int
    auto_data_sources: bool
    data_sources: list[str]
    criteria: list[Criterion]
    table_id: str | None
    exclude_domains: list[str]
    created_at: float
    created_wall: datetime
    schedule: Schedule
    fail_tau: float | None  # active second a failing task fails; None = never
    paid_limit: int | None  # results the org could pay for; None = unlimited
    segments: list[tuple[float, float]]

    @property
    def target(self) -> int:
        """Results the task works towards: ``desired_num_results`` capped by what was paid."""
        limit = self.paid_limit
        return self.desired_num_results if limit is None else min(self.desired_num_results, limit)

    def limit_tau(self) -> float:
        stop = self.schedule.stop_at(self.target)
        return stop if self.fail_tau is None else min(stop, self.fail_tau)

    def _raw_tau(self, now: float) -> float:
        wall, tau = self.segments[-1]
        return tau + max(0.0, now - wall)

    def tau(self, now: float) -> float:
        """Active seconds the pipeline has run at ``now``."""
        return min(self._raw_tau(now), self.limit_tau())

    def status(self, now: float) -> str:
        """``created | in_progress | done | failed`` at ``now``."""
        if now < self.segments[-1][0]:
            return "created"
        if self._raw_tau(now) + _EPS < self.limit_tau():
            return "in_progress"
        failing = self.fail_tau is not None and self.fail_tau <= self.schedule.stop_at(self.target)
        return "failed" if failing else "done"

    def is_exhausted(self, now: float) -> bool:
        """DOC: the candidate pool is depleted (discovered and screened); never while created."""
        if now < self.segments[-1][0]:
            return False
        return self.tau(now) + _EPS >= self.schedule.exhausted_at

    def counters(self, now: float) -> dict[str, int]:
        """The four pipeline counters at ``now`` (contract §3.1)."""
        tau, s = self.tau(now), self.schedule
        return {"num_results_discovered": s.discovered(tau), "num_results_enriched": s.enriched(tau),
                "num_results_evaluated": s.evaluated(tau), "num_results": s.qualified(tau)}  # fmt: skip

    def results(self, now: float) -> list[Evaluation]:
        """Qualified candidates so far, relevance descending, ties by company (§6): the same order on
        every sandbox of a seed (result ids derive from the task id, which is random per sandbox)."""
        tau = self.tau(now)
        done = [e for e in self.schedule.evaluations if e.qualified and e.finished_at <= tau + _EPS]
        return sorted(done, key=lambda e: (-e.relevance, e.company_id))

    def outcome(self) -> int:
        """Results the task will have delivered when it stops (what it is charged for)."""
        return self.schedule.qualified(self.limit_tau())

    def wall_of(self, tau: float) -> datetime:
        """The wall-clock moment the pipeline reached active second ``tau``."""
        index = max((i for i, (_, start) in enumerate(self.segments) if start < tau), default=0)
        wall, start = self.segments[index]
        moment = wall + max(0.0, tau - start)
        if index + 1 < len(self.segments):
            moment = min(moment, self.segments[index + 1][0])
        return self.created_wall + timedelta(seconds=moment - self.created_at)

    def run_from(self, now: float) -> None:
        """Open a run segment at ``now`` from where the task stands (resume, force)."""
        if now >= self.segments[-1][0]:
            self.segments.append((now, self.tau(now)))


class TaskStore:
    """Every task of every org, by id and in creation order."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}

    def next_seq(self) -> int:
        return len(self.tasks)

    def count(self, org: int) -> int:
        """Tasks ``org`` created so far (the ordinal of its next task)."""
        return sum(1 for t in self.tasks.values() if t.org == org)

    def add(self, task: Task) -> None:
        self.tasks[task.task_id] = task

    def get(self, task_id: str, org: int) -> Task | None:
        """The org's task ``task_id`` (None for unknown ids and other orgs' tasks)."""
        task = self.tasks.get(task_id)
        return task if task is not None and task.org == org else None

    def newest_first(self, org: int) -> list[Task]:
        return sorted((t for t in self.tasks.values() if t.org == org), key=lambda t: -t.seq)
