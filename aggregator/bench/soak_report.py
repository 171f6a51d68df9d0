"""What the fault soak measured, and the checks that compare its passes with a fault-free one.

Shapes:
    :class:`ProviderRun` — one provider's part of one search: status, error, job id, whether a
    submit was sent, and the records it delivered, in arrival order.
    :class:`SearchRun` — one search: per-provider runs, merged record ids, elapsed vs deadline
    (virtual seconds).
    :class:`PassResult` — one pass over the queries (fault-free reference, faulty, or deadline):
    the searches, ``/_sandbox/stats``, faults fired by kind, client retries, leak probes, wall and
    CPU time (real seconds).
    :class:`PassSummary` — the counts of one checked pass; :class:`SoakReport` — the verdict: the
    faulty and deadline passes' summaries, every problem found (empty when the soak passed) and
    the legitimate differences, each with its reason. ``table()`` renders it for a terminal,
    ``to_json()`` as JSON-serializable data.

The checks (:func:`check_pass`, each pass against the fault-free reference):

- *ended*: every search produced a report (one still running well past its deadline is
  ``hung``); a provider that did not end ``found``/``no_result`` names its error.
- *deadline*: ``elapsed_s <= deadline_s + tolerance_s`` (virtual seconds; the tolerance is the
  event loop's latency under load, a fraction of a real second, converted to virtual seconds).
- *no duplicate*: a provider never delivers the same record (by its id or its entity key) twice
  in one search, and merged record ids are unique.
- *no loss*: the sandbox world is deterministic (the same query to the same emulator matches the
  same entities), so a provider that ended ``found``/``no_result`` delivered exactly the entity
  keys it delivered in the reference. One that ended ``partial``/``failed`` (retries exhausted,
  an error that is not retried, the deadline) may deliver fewer, never one the reference did not:
  each shortfall is listed in ``explained`` with the error that caused it, not counted as a loss.
  Entity keys (LinkedIn URL, domain...) rather than provider record ids, because some providers
  mint record ids per job (Extruct's result ids differ between two sandboxes).
- *no paid start twice*: per provider, the emulator's ``jobs_started`` is at least the searches
  that got a job id and at most those plus the searches whose submit was sent but never answered
  (cut off by the deadline, or failed ambiguously: ``uncertain``). The reference must match exactly.
- *no leak*: no ``aiohttp.ClientSession`` left open, no asyncio task left, no ResourceWarning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "PassResult",
    "PassSummary",
    "ProviderRun",
    "SearchRun",
    "SoakReport",
    "check_pass",
    "check_reference",
    "summarize",
]

DELIVERED = ("found", "no_result")


@dataclass
class ProviderRun:
    """One provider's part of one search.

    ``hit_ids`` are the provider's record ids as delivered; ``keys`` each hit's entity key (see
    :func:`aggregator.resolution.identity_key`). ``submit_sent``: the run recorded a submit intent
    (the job may have started even when ``job_id`` is None).
    """

    provider: str
    status: str
    job_id: str | None = None
    submit_sent: bool = False
    error: str | None = None  # "ErrorType: message"
    error_endpoint: str | None = None
    note: str | None = None
    hit_ids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.status in DELIVERED and self.error is None


@dataclass
class SearchRun:
    """One search of a pass. ``status``: found, partial, failed or hung. Times in virtual seconds."""

    index: int
    query: str
    mode: str
    deadline_s: float
    status: str = "hung"
    elapsed_s: float | None = None
    providers: dict[str, ProviderRun] = field(default_factory=dict)
    record_ids: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"#{self.index} {self.mode} {self.query!r}"


@dataclass
class PassResult:
    """One pass over the queries. ``wall_s`` and ``cpu_s`` are real seconds."""

    searches: list[SearchRun]
    stats: dict[str, Any]
    faults: dict[str, dict[str, int]]
    retries: dict[str, int]
    wall_s: float
    cpu_s: float
    unclosed_sessions: int = 0
    leaked_tasks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    circuits_opened: dict[str, int] = field(default_factory=dict)  # per provider: times its circuit opened

    def jobs_started(self, provider: str) -> int:
        doc = self.stats.get("providers", {}).get(provider, {})
        return int(doc.get("jobs_started", 0))


@dataclass
class PassSummary:
    """Counts of one checked pass. Durations: ``*_s`` virtual, ``wall_s``/``cpu_s`` real seconds."""

    searches: int
    deadline_s: float
    wall_s: float
    cpu_s: float
    faults: dict[str, dict[str, int]]
    retries: dict[str, int]
    outcomes: dict[str, dict[str, int]]
    search_status: dict[str, int]
    records: int
    max_elapsed_s: float
    max_deadline_overrun_s: float
    jobs_started: dict[str, int]
    jobs_with_id: dict[str, int]
    uncertain_submits: dict[str, int]
    unclosed_sessions: int
    leaked_tasks: int
    circuits_opened: dict[str, int] = field(default_factory=dict)


@dataclass
class SoakReport:
    """The soak's verdict (see the module docstring). ``ok`` is True when ``problems`` is empty."""

    fault_rate: float
    seed: int
    concurrency: int
    time_scale: float
    deadline_tolerance_s: float
    reference: PassSummary
    faulty: PassSummary
    deadline: PassSummary | None = None
    problems: list[str] = field(default_factory=list)
    explained: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON-serializable data, plus ``ok``."""
        return {**asdict(self), "ok": self.ok}

    def table(self) -> str:
        """Plain text: settings, one block per pass, the legitimate differences and every problem."""
        f = self.faulty
        lines = [
            f"soak: {f.searches} searches x 2 passes, fault rate {self.fault_rate:g} per kind and call, "
            f"seed {self.seed}, concurrency {self.concurrency}, time scale {self.time_scale:g}",
            f"fault-free pass: wall {self.reference.wall_s:.1f} s, {self.reference.records} records",
            "", *_pass_lines("faulty pass", f), "",
        ]
        if self.deadline is not None:
            lines += [*_pass_lines("deadline pass (slow answers, short deadline)", self.deadline), ""]
        lines.append(f"deadline tolerance {self.deadline_tolerance_s:.1f} s; "
                     f"explained differences: {len(self.explained)}")
        lines += [f"  - {line}" for line in self.explained[:15]]
        if len(self.explained) > 15:
            lines.append(f"  ... {len(self.explained) - 15} more (see the JSON)")
        lines.append("PASS: nothing hung, lost, duplicated, paid twice or leaked" if self.ok
                     else f"FAIL: {len(self.problems)} problem(s)")
        lines += [f"  ! {line}" for line in self.problems[:50]]
        return "\n".join(lines)


def _pass_lines(title: str, s: PassSummary) -> list[str]:
    kinds = sorted({k for per in s.faults.values() for k in per})
    header = ["provider", *kinds, "retries", "jobs started", "outcomes"]
    rows = [header]
    for name in sorted(set(s.outcomes) | set(s.jobs_started)):
        starts = f"{s.jobs_started.get(name, 0)}/{s.jobs_with_id.get(name, 0)}"
        if s.uncertain_submits.get(name):
            starts += f"+{s.uncertain_submits[name]}?"
        rows.append([name, *(str(s.faults.get(name, {}).get(k, 0)) for k in kinds), str(s.retries.get(name, 0)),
                     starts, " ".join(f"{st}={n}" for st, n in sorted(s.outcomes.get(name, {}).items()))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    status = ", ".join(f"{k} {v}" for k, v in sorted(s.search_status.items()))
    return [
        f"{title}: {s.searches} searches ({status}), deadline {s.deadline_s:g} s, wall {s.wall_s:.1f} s, "
        f"CPU {s.cpu_s:.1f} s",
        *("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows),
        f"records {s.records}; longest search {s.max_elapsed_s:.1f} s, worst overrun of the deadline "
        f"{s.max_deadline_overrun_s:+.1f} s; unclosed sessions {s.unclosed_sessions}, leaked tasks {s.leaked_tasks}",
        "(jobs started: at the emulator / searches holding a job id + submits cut off or lost)",
        "circuit breakers opened: " + (", ".join(f"{p} {n}x" for p, n in sorted(s.circuits_opened.items()) if n)
                                       or "none"),
    ]


def _dup_ids(ids: list[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def _check_ended(run: SearchRun, tolerance_s: float, problems: list[str]) -> None:
    if run.status == "hung":
        problems.append(f"{run.label}: no report (hung past its deadline)")
        return
    if run.elapsed_s is not None and run.elapsed_s > run.deadline_s + tolerance_s:
        problems.append(f"{run.label}: ran {run.elapsed_s:.1f} s, past its {run.deadline_s:g} s deadline")
    for prov in run.providers.values():
        if not prov.completed and prov.error is None:
            problems.append(f"{run.label} {prov.provider}: ended {prov.status} without a reason")


def _check_duplicates(run: SearchRun, problems: list[str]) -> None:
    for prov in run.providers.values():
        dups = _dup_ids(prov.hit_ids) or _dup_ids(prov.keys)
        if dups:
            problems.append(f"{run.label} {prov.provider}: delivered {len(dups)} record(s) twice: {dups[:3]}")
    dups = _dup_ids(run.record_ids)
    if dups:
        problems.append(f"{run.label}: {len(dups)} merged record id(s) twice: {dups[:3]}")


def _check_records(ref: SearchRun, run: SearchRun, problems: list[str], explained: list[str]) -> None:
    for name, prov in run.providers.items():
        expected = set(ref.providers[name].keys) if name in ref.providers else set()
        got = set(prov.keys)
        extra = got - expected
        if extra:
            problems.append(f"{run.label} {name}: {len(extra)} record(s) the fault-free pass never returned: "
                            f"{sorted(extra)[:3]}")
        missing = expected - got
        if missing and prov.completed:
            problems.append(f"{run.label} {name}: lost {len(missing)} of {len(expected)} record(s) "
                            f"although it ended {prov.status}: {sorted(missing)[:3]}")
        elif not prov.completed:
            where = f" at {prov.error_endpoint}" if prov.error_endpoint else ""
            explained.append(f"{run.label} {name}: {prov.status}, {len(got)}/{len(expected)} records "
                             f"({prov.error}{where})")


def _check_reference(ref: SearchRun, problems: list[str]) -> None:
    failed = {p.provider: p.error or p.status for p in ref.providers.values() if not p.completed}
    if ref.status == "hung" or failed:
        problems.append(f"{ref.label}: the fault-free pass did not complete ({failed or 'hung'})")


def _starts(result: PassResult, exact: bool, problems: list[str]) -> tuple[dict[str, int], dict[str, int],
                                                                          dict[str, int]]:
    """Per provider: jobs started at the emulator, searches holding a job id, unanswered submits."""
    names = sorted({p for run in result.searches for p in run.providers})
    started, with_id, uncertain = {}, {}, {}
    for name in names:
        runs = [r.providers[name] for r in result.searches if name in r.providers]
        with_id[name] = sum(1 for p in runs if p.job_id is not None)
        uncertain[name] = sum(1 for p in runs if p.job_id is None and p.submit_sent)
        started[name] = result.jobs_started(name)
        high = with_id[name] + (0 if exact else uncertain[name])
        if not with_id[name] <= started[name] <= high:
            problems.append(f"{name}: {started[name]} jobs started for {with_id[name]} searches with a job id "
                            f"(+{uncertain[name]} unanswered submits): a paid start was duplicated or lost")
    return started, with_id, uncertain


def _leaks(result: PassResult, problems: list[str]) -> None:
    if result.unclosed_sessions:
        problems.append(f"{result.unclosed_sessions} aiohttp session(s) left open")
    problems += [f"task left running: {name}" for name in result.leaked_tasks]
    problems += [f"warning: {text}" for text in result.warnings]


def summarize(result: PassResult, problems: list[str], *, exact_starts: bool = False) -> PassSummary:
    """The counts of ``result``; problems of paid starts and leaks are appended to ``problems``."""
    started, with_id, uncertain = _starts(result, exact_starts, problems)
    _leaks(result, problems)
    outcomes: dict[str, Counter[str]] = {}
    for run in result.searches:
        for prov in run.providers.values():
            outcomes.setdefault(prov.provider, Counter())[prov.status] += 1
    ended = [r for r in result.searches if r.elapsed_s is not None]
    return PassSummary(
        searches=len(result.searches), deadline_s=max((r.deadline_s for r in result.searches), default=0.0),
        wall_s=result.wall_s, cpu_s=result.cpu_s, faults=result.faults, retries=result.retries,
        outcomes={k: dict(v) for k, v in outcomes.items()},
        search_status=dict(Counter(r.status for r in result.searches)),
        records=sum(len(r.record_ids) for r in result.searches),
        max_elapsed_s=max((r.elapsed_s or 0.0 for r in ended), default=0.0),
        max_deadline_overrun_s=max(((r.elapsed_s or 0.0) - r.deadline_s for r in ended), default=0.0),
        jobs_started=started, jobs_with_id=with_id, uncertain_submits=uncertain,
        unclosed_sessions=result.unclosed_sessions, leaked_tasks=len(result.leaked_tasks),
        circuits_opened=result.circuits_opened,
    )


def check_pass(reference: PassResult, result: PassResult, *, tolerance_s: float, label: str,
               problems: list[str], explained: list[str]) -> PassSummary:
    """Check ``result`` against the fault-free ``reference`` (same queries, in the same order).

    Appends each problem and each explained difference, prefixed with ``label``, and returns the
    pass's summary.
    """
    found: list[str] = []
    legit: list[str] = []
    refs = {r.index: r for r in reference.searches}
    for run in result.searches:
        _check_ended(run, tolerance_s, found)
        _check_duplicates(run, found)
        _check_records(refs[run.index], run, found, legit)
    summary = summarize(result, found)
    problems += [f"{label}: {p}" for p in found]
    explained += [f"{label}: {e}" for e in legit]
    return summary


def check_reference(reference: PassResult, problems: list[str]) -> PassSummary:
    """The fault-free pass must complete every search and start exactly one job per search."""
    found: list[str] = []
    for run in reference.searches:
        _check_reference(run, found)
        _check_duplicates(run, found)
    summary = summarize(reference, found, exact_starts=True)
    problems += [f"fault-free pass: {p}" for p in found]
    return summary
