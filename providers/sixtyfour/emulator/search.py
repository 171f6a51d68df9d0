"""Query sources of ``/search/query`` and ``/search/export``: fresh searches and ``search_id``s
(contract §1.4, §1.5, §2.3).

A fresh search is one of ``simple_filters`` (:mod:`.filters`), ``filters``
(:mod:`.dsl`), ``query`` (natural language, people only: the sandbox matcher, as deep
search) or ``parsed_query``. It runs over the mode's documents (:mod:`.documents`) and
is saved under a new ``search_id`` as **mode + query shape only** (DOC: "replays only the query
shape; pass exclusions again"). A ``search_id`` names either such a saved search (re-run: the
world is immutable, so the rows are the same) or a completed deep search (its result set).

``parsed_query`` (INF: the real object is an undocumented LLM output) is the object this
emulator echoes on fresh-search pages: ``{"mode": ..., "simple_filters" | "filters" | "query":
...}``; it round-trips. Errors are ``{"detail": "..."}`` replies: 400 for invalid queries (the
message names the field/operator), 404 for unknown ``search_id``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from providers.sandbox.matching import parse_query, search_companies, search_people
from providers.sixtyfour.emulator.capabilities import SCHEMAS
from providers.sixtyfour.emulator.dsl import compile_dsl
from providers.sixtyfour.emulator.engine import (
    CompiledQuery,
    Doc,
    EngineConfig,
    FilterError,
    Limits,
    run,
)
from providers.sixtyfour.emulator.filters import compile_simple
from providers.sixtyfour.emulator.http import detail_error
from providers.sixtyfour.emulator.models import EmulatorSettings, QueryBody
from providers.sixtyfour.emulator.rows import Row

if TYPE_CHECKING:
    from providers.sixtyfour.emulator import SixtyfourEmulator

__all__ = ["FilterSearch", "Resolved", "SavedSearch", "effective_cap", "engine_config"]

NOT_FOUND = "Search not found or has no parsed_query."
_SHAPES = ("simple_filters", "filters", "query")


def engine_config(settings: EmulatorSettings) -> EngineConfig:
    """The engine limits and match operator from the emulator settings."""
    limits = Limits(settings.max_query_depth, settings.max_clause_count,
                    settings.max_terms_per_clause, settings.max_sort_clauses,
                    settings.max_string_length)
    return EngineConfig(limits, settings.match_operator)


def compile_query(source: str, shape: Any, mode: str, config: EngineConfig,
                  *, search_request: bool = True) -> CompiledQuery:
    """``simple_filters`` or ``filters`` compiled for ``mode`` (FilterError if invalid)."""
    schema = SCHEMAS[mode]
    if source == "simple_filters":
        return compile_simple(shape, schema, config, search_request=search_request)
    return compile_dsl(shape, schema, config, search_request=search_request)


@dataclass(frozen=True)
class SavedSearch:
    """What a fresh search's ``search_id`` stores (no exclusions, DOC)."""

    org: int
    search_id: str
    mode: str
    source: str  # "simple_filters" | "filters" | "query"
    shape: Any

    def parsed_query(self) -> dict[str, Any]:
        return {"mode": self.mode, self.source: self.shape}


@dataclass(frozen=True)
class Resolved:
    """A search ready to page or export: its full ranking before caps and exclusions."""

    search_id: str
    mode: str
    rows: tuple[Row, ...]
    query_cap: int | None = None  # $limit / filters.size
    extras: dict[str, Any] | None = None  # page fields of fresh searches (parsed_query, ...)


def effective_cap(body_max: int, max_given: bool, query_cap: int | None, ceiling: int) -> int:
    """DOC §2.3: the smaller of ``max_results`` and the query-level cap; the query-level cap
    alone drives it when ``max_results`` is omitted (clamped to the 1..5000 range)."""
    if query_cap is None:
        return body_max
    return min(body_max, query_cap) if max_given else min(query_cap, ceiling)


class FilterSearch:
    """Fresh searches and saved ``search_id``s of one emulator."""

    def __init__(self, em: SixtyfourEmulator) -> None:
        self.em = em
        self.saved: dict[tuple[int, str], SavedSearch] = {}

    def for_query(self, org: int, body: QueryBody) -> Resolved:
        """The search named by a first ``/search/query`` request (exactly one source)."""
        source = body.sources()[0]
        if source == "search_id":
            return self.by_search_id(org, body.search_id or "")
        if source == "parsed_query":
            return self.fresh(org, *self.unpack(body.parsed_query, body.mode))
        if source == "query":
            if body.mode == "company":
                raise detail_error(400, "query (natural language) is only supported in people mode")
            return self.fresh(org, "people", "query", body.query)
        return self.fresh(org, body.mode or "company", source, getattr(body, source))

    def unpack(self, parsed: Any, mode: str | None) -> tuple[str, str, Any]:
        """``(mode, source, shape)`` of a ``parsed_query`` object (INF shape, see module doc)."""
        present = [k for k in _SHAPES if isinstance(parsed, dict) and k in parsed]
        if len(present) != 1:
            raise detail_error(400, "parsed_query must contain exactly one of simple_filters, "
                                    "filters or query")
        inner_mode = parsed.get("mode") or mode or ("people" if present[0] == "query" else "company")
        if inner_mode not in SCHEMAS:
            raise detail_error(400, f"Unsupported mode {inner_mode!r}")
        return inner_mode, present[0], parsed[present[0]]

    def fresh(self, org: int, mode: str, source: str, shape: Any) -> Resolved:
        """Run a new search and save it under a new ``search_id``."""
        saved = SavedSearch(org, self.em.ctx.new_uuid(), mode, source, shape)
        resolved = self.execute(saved)
        self.saved[(org, saved.search_id)] = saved
        self.em.ctx.stats.add("filter_searches")
        return resolved

    def by_search_id(self, org: int, search_id: str) -> Resolved:
        """A saved filter search (re-run) or a completed deep search of ``org``; else 404."""
        saved = self.saved.get((org, search_id))
        if saved is not None:
            return self.execute(saved)
        em = self.em
        task = em.tasks.by_search_id(org, search_id)
        if task is None or task.status(em.now()) != "completed":
            raise detail_error(404, NOT_FOUND)
        return Resolved(task.search_id, task.mode, task.found)

    def execute(self, saved: SavedSearch) -> Resolved:
        rows, cap = self._rows(saved)
        extras: dict[str, Any] = {"parsed_query": saved.parsed_query()}
        if saved.mode == "people":  # DOC: match count capped at 50 000, people mode only
            extras["total_available"] = min(len(rows), self.em.settings.total_available_cap)
        return Resolved(saved.search_id, saved.mode, rows, cap, extras)

    def _rows(self, saved: SavedSearch) -> tuple[tuple[Row, ...], int | None]:
        docs = self.em.documents.get(saved.mode)
        if saved.source == "query":
            return self._natural(saved.mode, saved.shape), None
        try:
            compiled = compile_query(saved.source, saved.shape, saved.mode,
                                     engine_config(self.em.settings))
        except FilterError as exc:
            raise detail_error(400, str(exc)) from exc
        return tuple(docs.rows[i] for i in run(docs.docs, compiled)), compiled.limit

    def _natural(self, mode: str, text: Any) -> tuple[Row, ...]:
        """The sandbox matcher's ranking for a natural-language query, as documents."""
        if not isinstance(text, str) or not text.strip():
            raise detail_error(400, "query must be a non-empty string")
        world, docs = self.em.ctx.world, self.em.documents.get(mode)
        limit = self.em.settings.total_available_cap
        if mode == "people":
            people = search_people(world, parse_query(text, "people"), provider="sixtyfour",
                                   limit=limit)
            return tuple(docs.by_id[p.linkedin_slug] for p, _ in people)
        companies = search_companies(world, parse_query(text, "company"), provider="sixtyfour",
                                     limit=limit)
        return tuple(docs.by_id[c.linkedin_slug] for c, _ in companies)

    def scope(self, mode: str, simple_filters: Any, filters: Any) -> list[Doc]:
        """Documents in a field-values scope (FilterError for an invalid scope)."""
        docs = self.em.documents.get(mode)
        if simple_filters is None and filters is None:
            return list(docs.docs)
        source, shape = ("simple_filters", simple_filters) if filters is None else ("filters", filters)
        compiled = compile_query(source, shape, mode, engine_config(self.em.settings),
                                 search_request=False)
        return [docs.docs[i] for i in run(docs.docs, compiled)]
