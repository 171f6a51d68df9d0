"""Deep Search runs of the Orbit emulator: lifecycle on the virtual clock (contract §4, §9).

A run's whole life is fixed when it starts and read off the clock when observed (no background
work). ``t`` below is virtual seconds since the start; durations come from the settings.

Single-profile shapes (one resolved person, or None when the signals corroborate nobody):

====================  ======================================  ==================================
shape                 status timeline                         profile level (readable when > 0)
====================  ======================================  ==================================
partial_only          running -> completed at ``partial_s``   partial from ``partial_s``
partial_plus_full     running -> generating_sections          partial from ``partial_s``, full
                      (``result {id}``) at ``partial_s`` ->   from ``full_s``
                      completed at ``full_s``
full_generation_only  running -> completed at ``full_s``      full from ``full_s``
no person             running -> failed at                    none
                      ``identity_check_s`` (INF §4.4)
====================  ======================================  ==================================

A run drawn to fail (fault kind ``job_failure``) with a resolved person ends ``failed`` at its
natural end *with* ``result.id`` (DOC §4.4 "profile saved, sections not ready before the
readiness timeout"): the profile keeps only basic data (partial for ``partial_plus_full``).

``candidate_discovery`` (INF phases, §4.3): ``finding_sources`` for ``sources_s``,
``clustering_sources`` for ``clustering_s`` (``candidate_count`` grows to the clusters found),
``dispatching_candidates`` for ``dispatch_s`` (``dispatched_candidate_count`` set, the rest
``skipped_candidate_count``), ``generating_candidates`` (one candidate profile persisted every
``candidate_interval_s``, readable from then on), ``completed``. A failing discovery ends
``failed`` when dispatching would start.

:meth:`Run.force_end` (test hook) moves the clock of a run to its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from providers.sandbox.entities import PersonEntity

__all__ = ["Level", "Run", "Timeline"]

IDENTITY_FAILURE = {"code": "identity_not_corroborated",
                    "message": "Could not verify the person from the supplied signals. Retry with "
                               "stronger identity inputs.",
                    "retry_inputs": ["linkedinUrl", "email"]}  # fmt: skip
READINESS_FAILURE = {"code": "profile_sections_not_ready",  # INF §4.4: a readiness-timeout code
                     "message": "The profile was saved but its sections were not ready before the "
                                "readiness timeout.",
                     "retry_inputs": []}  # fmt: skip
DISCOVERY_FAILURE = {"code": "candidate_discovery_failed",  # INF §4.4: other codes are UNK
                     "message": "Candidate discovery failed before candidates were dispatched.",
                     "retry_inputs": ["structuredIntent"]}  # fmt: skip


class Level(IntEnum):
    """How much of a profile exists: none, basic data only, partial, full."""

    NONE = 0
    BASIC = 1
    PARTIAL = 2
    FULL = 3


@dataclass(frozen=True)
class Timeline:
    """Durations (virtual seconds) a run was started with (copied from the settings)."""

    partial_s: float
    full_s: float
    identity_check_s: float
    sources_s: float
    clustering_s: float
    dispatch_s: float
    candidate_interval_s: float


@dataclass
class Run:
    """One Deep Search run. ``created_at`` is a clock monotonic value (virtual seconds).

    Single-profile runs have ``person`` (None: identity not corroborated); discovery runs have
    ``candidates`` (the people to persist, in discovery order) and ``clusters`` (discovered)."""

    request_id: str
    run_id: str
    api_key: str
    org: int
    shape: str
    fingerprint: bytes
    created_at: float
    timeline: Timeline
    fails: bool
    person: PersonEntity | None = None
    profile_id: str | None = None
    candidates: tuple[tuple[PersonEntity, str], ...] = ()  # (person, profile id)
    clusters: int = 0
    forced: bool = False
    _slots: dict[str, int] = field(default_factory=dict, repr=False)  # true_id -> candidate index

    def __post_init__(self) -> None:
        self._slots = {p.true_id: i for i, (p, _) in enumerate(self.candidates)}

    @property
    def discovery(self) -> bool:
        return self.shape == "candidate_discovery"

    @property
    def end_s(self) -> float:
        """Offset of the terminal status from the start."""
        tl = self.timeline
        if self.discovery:
            return self._end_discovery_s
        if self.person is None:
            return tl.identity_check_s
        return tl.partial_s if self.shape == "partial_only" else tl.full_s

    def force_end(self) -> None:
        """Test hook: every milestone of the run counts as reached from now on."""
        self.forced = True

    def elapsed(self, now: float) -> float:
        """Virtual seconds since the start (at least ``end_s`` once forced)."""
        t = now - self.created_at
        return max(t, self.end_s) if self.forced else t

    # -- single-profile --------------------------------------------------------------------------

    def status(self, now: float) -> str:
        """``running`` | ``generating_sections`` | ``completed`` | ``failed`` at ``now``."""
        t = self.elapsed(now)
        if self.discovery:
            return ("failed" if self.fails else "completed") if t >= self.end_s else "running"
        if t >= self.end_s:
            return "failed" if self.fails or self.person is None else "completed"
        if self.shape == "partial_plus_full" and t >= self.timeline.partial_s and self.person:
            return "generating_sections"
        return "running"

    def level_for(self, true_id: str, now: float) -> Level:
        """How much of ``true_id``'s profile this run has produced by ``now``."""
        t = self.elapsed(now)
        if self.discovery:
            slot = self._slots.get(true_id)
            if slot is None or self.fails:
                return Level.NONE
            return Level.PARTIAL if t >= self._persisted_at(slot) else Level.NONE
        if self.person is None or self.person.true_id != true_id:
            return Level.NONE
        return self._single_level(t)

    def _single_level(self, t: float) -> Level:
        tl = self.timeline
        if self.shape == "partial_plus_full":
            level = Level.FULL if t >= tl.full_s and not self.fails else Level.NONE
            return max(level, Level.PARTIAL if t >= tl.partial_s else Level.NONE)
        if t < self.end_s:
            return Level.NONE
        if self.fails:
            return Level.BASIC
        return Level.PARTIAL if self.shape == "partial_only" else Level.FULL

    def has_early_id(self, now: float) -> bool:
        """Whether the profile id is already visible in the status (``generating_sections``)."""
        return self.status(now) == "generating_sections"

    # -- candidate discovery ----------------------------------------------------------------------

    @property
    def _dispatch_s(self) -> float:
        return self.timeline.sources_s + self.timeline.clustering_s

    @property
    def _generate_s(self) -> float:
        return self._dispatch_s + self.timeline.dispatch_s

    @property
    def _end_discovery_s(self) -> float:
        if self.fails:
            return self._dispatch_s
        return self._generate_s + self.timeline.candidate_interval_s * len(self.candidates)

    def _persisted_at(self, slot: int) -> float:
        return self._generate_s + self.timeline.candidate_interval_s * (slot + 1)

    def discovery_result(self, now: float) -> dict[str, Any]:
        """The growing ``result`` of a ``candidate_discovery`` run (§4.3; names partly INF)."""
        t, tl = self.elapsed(now), self.timeline
        persisted = [pid for i, (_, pid) in enumerate(self.candidates) if t >= self._persisted_at(i)]
        if self.fails:
            persisted = []
        found = self.clusters if t >= self._dispatch_s else (
            0 if t < tl.sources_s else math.floor(self.clusters * (t - tl.sources_s) / tl.clustering_s))
        dispatched = len(self.candidates) if t >= self._dispatch_s and not self.fails else 0
        return {
            "candidate_profile_ids": persisted,
            "candidate_count": found,
            "dispatched_candidate_count": dispatched,
            "persisted_candidate_count": len(persisted),
            "skipped_candidate_count": self.clusters - dispatched if dispatched else 0,
            "current_phase": self._phase(t),
            "elapsed_ms": int(min(t, self._end_discovery_s) * 1000),
        }

    def _phase(self, t: float) -> str:
        if t >= self.end_s:
            return "failed" if self.fails else "completed"
        if t < self.timeline.sources_s:
            return "finding_sources"
        if t < self._dispatch_s:
            return "clustering_sources"
        return "dispatching_candidates" if t < self._generate_s else "generating_candidates"
