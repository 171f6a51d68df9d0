"""The job store: where the core records provider jobs *before* and *after* each step.

The scheduler writes, in order: the idempotency key of a submit **before** the submit call
(:meth:`JobStore.record_submit_intent`), the provider's job reference once the submit returned,
every fetch checkpoint, and the final state. A crashed run can then be resumed without starting a
paid job twice: a key without a job means "submit outcome unknown — replay with the same key".

:class:`InMemoryJobStore` keeps this in a dict (one process, no durability); the SQLite journal
(issue "durable runs") implements the same protocol.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from aggregator.contract import JobRef
from aggregator.models import Hit, ProviderOutcome, SearchReport, SearchRequest

__all__ = [
    "DEFAULT_KEEP_FINISHED",
    "MIN_RUN_ID_PREFIX",
    "SHORT_RUN_ID",
    "InMemoryJobStore",
    "JobRecord",
    "JobStore",
    "JobStoreState",
    "RunIdError",
    "RunState",
    "RunSummary",
    "match_run_id",
    "merged_so_far",
    "run_wall_s",
    "short_run_ids",
]

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


MIN_RUN_ID_PREFIX = 4
"""The shortest run id prefix :meth:`SqliteJournal.resolve_run_id` accepts (a full id is always accepted)."""
SHORT_RUN_ID = 8
"""How many characters of a run id ``deepsearch runs`` shows at least (more when needed to be unique)."""


@dataclass(frozen=True)
class RunSummary:
    """One line of ``deepsearch runs``.

    Times are real (wall-clock) UTC times: never the sandbox's sped-up clock. A run recorded by a
    journal older than wall times has ``created_on="run clock"``: its ``created_at`` is then the time
    on the run's clock (virtual on the sandbox), the only one that journal kept.

    ``records`` is the number of merged records (people or companies, not provider hits): the
    report's when the run has one (``records_final``), otherwise the hits recorded so far merged
    (``records_final=False``; capped at the request's ``max_results``, as the report would be).
    """

    run_id: str
    created_at: datetime
    status: str
    query: str
    mode: str
    providers: list[str]
    records: int
    records_final: bool = False
    hits: int = 0
    """Provider hits recorded (every provider's, before merging)."""
    finished_at: datetime | None = None
    """Wall-clock time the run last finished or was interrupted."""
    wall_s: float | None = None
    """Real seconds the run took (see :func:`run_wall_s`); None when not known."""
    virtual_s: float | None = None
    """The report's ``elapsed_s`` when the run was on the sandbox: virtual seconds."""
    sandbox: bool | None = None
    """Whether the report says the run was on the sandbox; None without a report."""
    created_on: Literal["wall clock", "run clock"] = "wall clock"
    short_id: str = ""
    """The shortest prefix of ``run_id`` (at least :data:`SHORT_RUN_ID` characters) that no other run
    in the store shares: ``deepsearch show`` and ``resume`` accept it."""


class RunIdError(LookupError):
    """A run id (or prefix) matches no run, or several (``candidates``, at most 10 are listed)."""

    def __init__(self, prefix: str, candidates: Sequence[str] = (), problem: str | None = None) -> None:
        self.prefix = prefix
        self.candidates = tuple(candidates)
        if problem is None:
            if not self.candidates:
                problem = f"no run {prefix!r} in the journal; `deepsearch runs` lists them"
            else:
                shown = ", ".join(self.candidates[:10]) + (", ..." if len(self.candidates) > 10 else "")
                problem = (f"run id prefix {prefix!r} is ambiguous: it starts {len(self.candidates)} runs "
                           f"({shown}); give more characters")
        self.problem = problem
        super().__init__(problem)


def match_run_id(prefix: str, run_ids: Iterable[str]) -> str:
    """The run id ``prefix`` names among ``run_ids``: itself when it is one, else the only id it begins
    (at least :data:`MIN_RUN_ID_PREFIX` characters, as git accepts a unique commit prefix).

    Raises:
        RunIdError: no run matches, several do (``candidates``), or the prefix is too short.
    """
    ids = sorted(set(run_ids))
    if prefix in ids:
        return prefix
    matches = [run_id for run_id in ids if run_id.startswith(prefix)] if prefix else []
    if matches and len(prefix) < MIN_RUN_ID_PREFIX:
        raise RunIdError(prefix, matches, f"run id prefix {prefix!r} is too short: give at least "
                                          f"{MIN_RUN_ID_PREFIX} characters (`deepsearch runs` lists the ids)")
    if len(matches) != 1:
        raise RunIdError(prefix, matches)
    return matches[0]


def short_run_ids(run_ids: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> dict[str, str]:
    """Each id's shortest prefix of at least :data:`SHORT_RUN_ID` characters that ``neighbours(id)``
    (the ids next to it in sorted order, among every run) do not share."""
    shorts = {}
    for run_id in run_ids:
        length = SHORT_RUN_ID
        for other in neighbours(run_id):
            common = next((i for i, (a, b) in enumerate(zip(run_id, other, strict=False)) if a != b),
                          min(len(run_id), len(other)))
            length = max(length, common + 1)
        shorts[run_id] = run_id[:length]
    return shorts


def merged_so_far(hits: Iterable[Hit], request: SearchRequest) -> int:
    """How many merged records ``hits`` make, capped at ``request.max_results`` (as a report is)."""
    from aggregator.merge import Resolver  # not at import: the CLI's start-up stays light

    resolver = Resolver(request.mode)
    resolver.add(hits)
    return min(resolver.record_count, request.max_results)


def run_wall_s(report: SearchReport | None, *, uninterrupted: bool, created: datetime | None,
               finished: datetime) -> float | None:
    """The real seconds a finished run took: the report's ``wall_s`` when it measured it; else its
    ``elapsed_s`` off the sandbox (the system clock's seconds are real ones); else, for a sandbox run
    never interrupted, the wall time between recording the run and finishing it. None otherwise (a
    sandbox run resumed by a process that did not measure its wall time)."""
    if report is None:
        return None
    if report.wall_s is not None:
        return report.wall_s
    if not report.sandbox:
        return report.elapsed_s
    if uninterrupted and created is not None:
        return max(0.0, (finished - created).total_seconds())
    return None


def _wall_now() -> datetime:
    return datetime.now(UTC)


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
    created_at: datetime | None = None
    """Wall-clock time the run was recorded (None in journals older than wall times)."""
    finished_at: datetime | None = None
    """Wall-clock time the run last finished or was interrupted."""
    wall_s: float | None = None
    """Real seconds the run took (see :func:`run_wall_s`); None when not known."""


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

    async def record_cache_key(self, run_id: str, key: str) -> None:
        """Make finished run ``run_id`` the result-cache entry of ``key`` (:mod:`aggregator.cache`): the key
        is cleared from every other run, so one run answers a key. Committed before it returns."""
        ...

    async def cached_run(self, key: str, max_age_s: float, now: datetime | None = None) -> RunState | None:
        """The run that holds ``key`` when it is ``done`` with a report and finished at most ``max_age_s``
        real seconds before ``now`` (default: the store's wall clock), by its wall-clock finish time; else None."""
        ...


@dataclass
class _Run:
    request: SearchRequest
    created_at: datetime  # on the run's clock, as given to record_run
    created_wall: datetime
    status: str = "running"
    report: SearchReport | None = None
    finished_wall: datetime | None = None
    wall_s: float | None = None


DEFAULT_KEEP_FINISHED = 1000
"""Finished runs an :class:`InMemoryJobStore` keeps by default (see its docstring)."""
_FINISHED = frozenset({"done", "failed"})


class InMemoryJobStore:
    """A :class:`JobStore` in a dict. ``records`` is public for inspection in tests.

    ``now`` is the wall clock that stamps runs (default the system's UTC time).

    ``keep_finished``: how many *finished* runs (``done`` or ``failed``) it keeps, with their jobs, hits,
    outcomes and report; past that the oldest finished run is forgotten (None: keep every run). A run
    that is running or interrupted is never forgotten: its journaled keys and checkpoints are what make
    resuming it safe. Without the bound, a long-lived process (a server, a batch) would hold every report
    it ever produced (about 140 KiB per 20-record search). Every operation costs the same however many
    runs the store holds (a run's jobs and hits are found through its own index, not by a scan).
    """

    def __init__(self, *, now: Callable[[], datetime] = _wall_now,
                 keep_finished: int | None = DEFAULT_KEEP_FINISHED) -> None:
        if keep_finished is not None and keep_finished < 0:
            raise ValueError("keep_finished must be >= 0 or None")
        self.records: dict[tuple[str, str], JobRecord] = {}
        self._now = now
        self._keep_finished = keep_finished
        self._runs: dict[str, _Run] = {}
        self._hits: dict[tuple[str, str], list[Hit]] = {}
        self._outcomes: dict[str, dict[str, ProviderOutcome]] = {}
        self._providers: dict[str, dict[str, None]] = {}  # run id -> providers with a job or hits, in order
        self._finished: dict[str, None] = {}  # finished run ids, oldest first
        self._cache: dict[str, str] = {}  # result-cache key -> the run holding it
        self._cache_keys: dict[str, str] = {}  # run id -> its key

    def _update(self, run_id: str, provider: str, event: str, *, state: JobStoreState | None = None,
                job: JobRef | None = None, checkpoint: Mapping[str, Any] | None = None) -> None:
        r = self.records[(run_id, provider)]
        self.records[(run_id, provider)] = JobRecord(
            r.run_id, r.provider, r.idempotency_key, r.request, r.state if state is None else state,
            r.job if job is None else job, r.checkpoint if checkpoint is None else checkpoint, (*r.history, event))

    async def record_submit_intent(
        self, run_id: str, provider: str, idempotency_key: str, request: SearchRequest
    ) -> None:
        self.records[(run_id, provider)] = JobRecord(
            run_id, provider, idempotency_key, request, history=("submitting",)
        )
        self._providers.setdefault(run_id, {})[provider] = None

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None:
        self._update(run_id, provider, "submitted", state="submitted", job=job)

    async def record_checkpoint(self, run_id: str, provider: str, checkpoint: Mapping[str, Any]) -> None:
        self._update(run_id, provider, "checkpoint", checkpoint=dict(checkpoint))

    async def record_state(self, run_id: str, provider: str, state: JobStoreState) -> None:
        self._update(run_id, provider, state, state=state)

    async def get(self, run_id: str, provider: str) -> JobRecord | None:
        return self.records.get((run_id, provider))

    async def record_run(self, run_id: str, request: SearchRequest, created_at: datetime) -> None:
        self._runs.setdefault(run_id, _Run(request, created_at, self._now()))  # a run is recorded once

    async def record_hits(self, run_id: str, provider: str, hits: Sequence[Hit]) -> None:
        self._hits.setdefault((run_id, provider), []).extend(hits)
        self._providers.setdefault(run_id, {})[provider] = None

    async def hits(self, run_id: str, provider: str) -> list[Hit]:
        return list(self._hits.get((run_id, provider), []))

    async def record_outcome(self, run_id: str, outcome: ProviderOutcome) -> None:
        self._outcomes.setdefault(run_id, {})[outcome.provider] = outcome

    async def finish_run(self, run_id: str, status: str, report: SearchReport | None) -> None:
        run, finished = self._runs[run_id], self._now()
        wall_s = run_wall_s(report, uninterrupted=run.status == "running", created=run.created_wall,
                            finished=finished)
        run.status, run.report, run.finished_wall = status, report, finished
        run.wall_s = wall_s if report is not None else run.wall_s
        self._finished.pop(run_id, None)
        if status in _FINISHED:
            self._finished[run_id] = None
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        """Forget the oldest finished runs beyond ``keep_finished`` (with everything recorded for them)."""
        keep = self._keep_finished
        while keep is not None and len(self._finished) > keep:
            run_id = next(iter(self._finished))
            del self._finished[run_id]
            self._runs.pop(run_id, None)
            self._outcomes.pop(run_id, None)
            key = self._cache_keys.pop(run_id, None)
            if key is not None and self._cache.get(key) == run_id:
                del self._cache[key]
            for provider in self._providers.pop(run_id, {}):
                self.records.pop((run_id, provider), None)
                self._hits.pop((run_id, provider), None)

    async def runs(self, limit: int = 50) -> list[RunSummary]:
        """The latest ``limit`` runs, newest first (by wall-clock creation time)."""
        newest = sorted(self._runs.items(), key=lambda item: item[1].created_wall, reverse=True)[:limit]
        ids = sorted(self._runs)
        shorts = short_run_ids((run_id for run_id, _ in newest), lambda run_id: _neighbours(ids, run_id))
        summaries = []
        for run_id, run in newest:
            own = sorted(self._providers.get(run_id, ()))
            providers = [p for p in own if (run_id, p) in self.records]
            hits = [hit for p in own for hit in self._hits.get((run_id, p), ())]
            report = run.report
            summaries.append(RunSummary(
                run_id, run.created_wall, run.status, run.request.query, run.request.mode, providers,
                records=len(report.records) if report else merged_so_far(hits, run.request),
                records_final=report is not None, hits=len(hits), finished_at=run.finished_wall,
                wall_s=run.wall_s, virtual_s=report.elapsed_s if report and report.sandbox else None,
                sandbox=report.sandbox if report else None, short_id=shorts[run_id]))
        return summaries

    async def resolve_run_id(self, prefix: str) -> str:
        """The full id of the run ``prefix`` names (see :func:`match_run_id`). Raises :class:`RunIdError`."""
        return match_run_id(prefix, self._runs)

    async def record_cache_key(self, run_id: str, key: str) -> None:
        """See :meth:`JobStore.record_cache_key`. KeyError when the run was never recorded."""
        if run_id not in self._runs:
            raise KeyError(run_id)
        earlier = self._cache.get(key)
        if earlier is not None:
            self._cache_keys.pop(earlier, None)
        self._cache_keys.pop(run_id, None)
        self._cache[key] = run_id
        self._cache_keys[run_id] = key

    async def cached_run(self, key: str, max_age_s: float, now: datetime | None = None) -> RunState | None:
        """See :meth:`JobStore.cached_run`."""
        run_id = self._cache.get(key)
        run = self._runs.get(run_id) if run_id is not None else None
        if run_id is None or run is None or run.status != "done" or run.report is None or run.finished_wall is None:
            return None
        if ((now or self._now()) - run.finished_wall).total_seconds() > max_age_s:
            return None
        return await self.run(run_id)

    async def run(self, run_id: str) -> RunState | None:
        if run_id not in self._runs:
            return None
        run = self._runs[run_id]
        own = self._providers.get(run_id, {})
        jobs = {p: self.records[(run_id, p)] for p in own if (run_id, p) in self.records}
        hits = {p: list(self._hits[(run_id, p)]) for p in own if (run_id, p) in self._hits}
        return RunState(run_id, run.status, run.request, jobs, hits, list(self._outcomes.get(run_id, {}).values()),
                        run.report, created_at=run.created_wall, finished_at=run.finished_wall, wall_s=run.wall_s)


def _neighbours(ids: list[str], run_id: str) -> list[str]:
    """The ids next to ``run_id`` in the sorted ``ids``."""
    i = bisect.bisect_left(ids, run_id)
    return ids[max(0, i - 1):i] + ids[i + 1:i + 2]
