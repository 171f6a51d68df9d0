"""The filter-search indexes of the emulator: every visible world entity as a document (§2, §3).

Mode ``company``: every company visible to ``"sixtyfour"`` rendered by
:func:`~.rows.render_company`; mode ``people``: every visible person (and employer)
rendered by :func:`~.rows.render_person` -- the same rows deep search returns, so ids,
exclusions and CSV records agree across both flows. Index order is the world's (``true_id``).

Built lazily on first use of a mode, then shared by every emulator over the same world object
(rendering is a pure function of world and settings, and documents are never mutated), so a
test suite starting many sandboxes renders once. Rendering allocates ~30k dicts; the cyclic GC
is paused meanwhile (it would otherwise rescan the world several times, doubling the build
time): about 0.45 s for the default 4000-company world.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from providers.sandbox.world import World
from providers.sixtyfour.emulator.engine import Doc
from providers.sixtyfour.emulator.rows import Row, render_company, render_person

__all__ = ["DocumentCache", "DocumentSet"]

PROVIDER = "sixtyfour"
_SHARED_MAX = 8
_shared: dict[tuple[int, str, float], tuple[World, DocumentSet]] = {}
"""(id(world), mode, positions_missing_rate) -> (world kept alive so its id stays unique, set)."""


@dataclass(frozen=True)
class DocumentSet:
    """The rows of one mode in index order; ``docs[i]`` is ``rows[i].raw_source``."""

    mode: str
    rows: tuple[Row, ...]
    docs: tuple[Doc, ...] = field(repr=False)
    by_id: dict[str, Row] = field(repr=False)

    @classmethod
    def of(cls, mode: str, rows: list[Row]) -> DocumentSet:
        return cls(mode, tuple(rows), tuple(r.raw_source for r in rows),
                   {r.raw_document_id: r for r in rows})


class DocumentCache:
    """Lazily built :class:`DocumentSet` per mode for one world."""

    def __init__(self, world: World, *, positions_missing_rate: float) -> None:
        self.world = world
        self.positions_missing_rate = positions_missing_rate
        self._sets: dict[str, DocumentSet] = {}

    def get(self, mode: str) -> DocumentSet:
        cached = self._sets.get(mode)
        if cached is None:
            key = (id(self.world), mode, self.positions_missing_rate)
            shared = _shared.get(key)
            cached = shared[1] if shared is not None else self._build(mode)
            if shared is None:
                if len(_shared) >= _SHARED_MAX:
                    del _shared[next(iter(_shared))]
                _shared[key] = (self.world, cached)
            self._sets[mode] = cached
        return cached

    def _build(self, mode: str) -> DocumentSet:
        enabled = gc.isenabled()
        gc.disable()
        try:
            rows = self._people() if mode == "people" else self._companies()
        finally:
            if enabled:
                gc.enable()
        return DocumentSet.of(mode, rows)

    def _companies(self) -> list[Row]:
        world = self.world
        return [render_company(world.seed, world.company_view(PROVIDER, c), world.disagreements.website(PROVIDER, c))
                for c in world.companies if world.visible(PROVIDER, c.true_id)]

    def _people(self) -> list[Row]:
        world, rate = self.world, self.positions_missing_rate
        employers = {c.true_id: c for c in world.companies if world.visible(PROVIDER, c.true_id)}
        views = [world.person_view(PROVIDER, p) for p in world.people
                 if p.company_id in employers and world.visible(PROVIDER, p.true_id)]
        return [
            render_person(world.seed, v, world.company_view(PROVIDER, world.company(v.company_id)),
                          positions_missing_rate=rate)
            for v in views
        ]
