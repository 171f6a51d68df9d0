"""Route handlers of the Sixtyfour emulator: start, status, query (contract §1.1, §1.2, §2.3).

The legacy ``/search/start-filter-search`` (§2.4, :mod:`.legacy`) reuses :meth:`DeepSearchHandlers.open_flow`,
``serve_first`` and ``next_page``.

``/search/query`` first requests name exactly one source (400 otherwise); the source is
resolved by :class:`~.search.FilterSearch` (deep-search ``search_id``, saved or fresh
filter search) and paged by :mod:`.query` under the effective cap.

See :mod:`providers.sixtyfour.emulator` for the route list. Handlers answer early by raising
:class:`~providers.sandbox.server.Reply`; everything scoped to the org of the API key, which the
auth middleware stores in ``request[ORG]``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aiohttp import web

from aggregator.log import get_logger
from providers.sandbox.matching import parse_query, search_companies, search_people
from providers.sandbox.server import route_key
from providers.sandbox.world import World
from providers.sixtyfour.emulator.discovery import DiscoveryHandlers
from providers.sixtyfour.emulator.export import ExportHandlers
from providers.sixtyfour.emulator.http import ORG, read_json, validate
from providers.sixtyfour.emulator.http import detail_error as _detail
from providers.sixtyfour.emulator.http import ok as _ok
from providers.sixtyfour.emulator.jobs import FAILURE_MESSAGE, Task, draw_lifecycle
from providers.sixtyfour.emulator.legacy import PATH as LEGACY_FILTER_PATH
from providers.sixtyfour.emulator.legacy import LegacyFilterSearch
from providers.sixtyfour.emulator.models import QueryBody, StartDeepSearchBody
from providers.sixtyfour.emulator.query import CursorError, Flow, Page, compute_page, page_doc
from providers.sixtyfour.emulator.rows import Exclusions, Row, render_company, render_person
from providers.sixtyfour.emulator.search import effective_cap
from providers.sixtyfour.emulator.storage import StorageHandlers

if TYPE_CHECKING:
    from providers.sixtyfour.emulator import SixtyfourEmulator

__all__ = ["DeepSearchHandlers", "add_routes", "find_rows"]

log = get_logger(__name__)

START_PATH = "/search/start-deep-search"
RESULT_SETS_KEPT = 256  # distinct (mode, query, limit) result sets kept for reuse
CONCURRENCY_DETAIL = ("Too many concurrent deep searches (limit {n}). "
                      "Retry after an in-flight search completes.")


def add_routes(em: SixtyfourEmulator) -> None:
    """Register every Sixtyfour route on ``em.app``."""
    deep, storage = DeepSearchHandlers(em), StorageHandlers(em)
    discovery, export = DiscoveryHandlers(em), ExportHandlers(em)
    router = em.app.router
    router.add_post(START_PATH, deep.start)
    router.add_get("/search/status/{task_id}", deep.status)
    router.add_get("/search/deep-search-status/{task_id}", deep.legacy_status)
    router.add_post("/search/query", deep.query)
    router.add_post(LEGACY_FILTER_PATH, LegacyFilterSearch(em, deep).start)
    router.add_get("/search/download", storage.download)
    router.add_get("/_storage/{path:.+}", storage.fetch)
    router.add_get("/search/filter-capabilities", discovery.capabilities)
    router.add_post("/search/filter-field-values", discovery.field_values)
    router.add_post("/search/export", export.export)


def _start_doc(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "status": "queued", "message": "Search started successfully"}


class DeepSearchHandlers:
    """Deep-search routes bound to one emulator."""

    def __init__(self, em: SixtyfourEmulator) -> None:
        self.em = em

    async def start(self, request: web.Request) -> web.Response:
        """``POST /search/start-deep-search`` -> ``{task_id, status: "queued", message}``."""
        em, org = self.em, request[ORG]
        body = validate(StartDeepSearchBody, await read_json(request))
        if body.search_id is not None:
            known = em.tasks.by_search_id(org, body.search_id)
            if known is not None:
                # INF: an idempotent retry replays the original answer; no new job, no charge.
                em.ctx.stats.add("idempotent_replays")
                log.info("sixtyfour.search_replayed", task_id=known.task_id, org=org)
                return _ok(_start_doc(known.task_id))
        self._check_concurrency(request, org)
        task = self._new_task(request, org, body)
        em.tasks.add(task)
        em.ctx.stats.add("jobs_started")
        charge = em.settings.credits_per_search
        if task.error is None:
            charge += em.settings.credits_per_row * len(task.delivered)
        em.ctx.stats.add("credits_charged", charge)
        log.info("sixtyfour.search_started", task_id=task.task_id, org=org, rows=len(task.found))
        return _ok(_start_doc(task.task_id))

    def _check_concurrency(self, request: web.Request, org: int) -> None:
        em, now = self.em, self.em.now()
        limit = em.settings.max_concurrent_searches
        if len(em.tasks.tasks) < limit or len(em.tasks.in_flight(org, now)) < limit:
            return  # (fewer tasks than the limit in all: no need to scan them)
        em.ctx.stats.count_rate_limited(route_key(request))
        retry_s = em.tasks.concurrency_retry_after_s(org, now)
        raise _detail(429, CONCURRENCY_DETAIL.format(n=limit), retry_after_s=retry_s)

    def _new_task(self, request: web.Request, org: int, body: StartDeepSearchBody) -> Task:
        em, ctx, cfg = self.em, self.em.ctx, self.em.settings
        task_id = ctx.new_uuid()
        life = draw_lifecycle(
            task_id, queue_s=cfg.queue_s, duration_min_s=cfg.duration_min_s,
            duration_max_s=cfg.duration_max_s, failure_rate=cfg.failure_rate,
            forced_failure=ctx.faults.job_fails(ctx.provider, route_key(request)),
        )
        found = find_rows(em, body.mode, body.query, body.max_results)
        exclusions = Exclusions.build(body.mode, body.exclude_public_ids, body.exclude_entity_ids)
        return Task(
            task_id=task_id, org=org, mode=body.mode, query=body.query,
            output_mode=body.output_mode, search_id=body.search_id or ctx.new_uuid(),
            found=found, delivered=tuple(r for r in found if not exclusions.excludes(r)),
            created_at=em.now(), start_time=ctx.clock.now(), queue_s=life.queue_s,
            duration_s=life.duration_s, n_iterations=life.n_iterations,
            error=FAILURE_MESSAGE if life.fails else None,
            resource_handle_id=f"rh_{ctx.new_uuid()}" if body.output_mode == "csv" else None,
        )

    async def status(self, request: web.Request) -> web.Response:
        """``GET /search/status/{task_id}`` (404 when ``legacy_status_only`` is set)."""
        if self.em.settings.legacy_status_only:
            raise _detail(404, "Not Found")
        return self._status(request)

    async def legacy_status(self, request: web.Request) -> web.Response:
        """``GET /search/deep-search-status/{task_id}``: the same document."""
        if not self.em.settings.legacy_status_path_enabled:
            raise _detail(404, "Not Found")
        return self._status(request)

    def _status(self, request: web.Request) -> web.Response:
        em = self.em
        task = em.tasks.get(request.match_info["task_id"], request[ORG])
        if task is None:
            raise _detail(404, "Search not found or has no parsed_query.")
        reads_to_end = em.settings.complete_after_polls
        if reads_to_end is not None and task.kind == "deep_search" and task.forced_end_at is None:
            task.status_reads += 1
            if task.status_reads >= reads_to_end:
                task.forced_end_at = em.now()
        return _ok(task.status_doc(em.now()))

    async def query(self, request: web.Request) -> web.Response:
        """``POST /search/query``: a first request (``search_id``) or a cursor-only follow-up."""
        em = self.em
        em.check_limit(request, em.query_limiter, request[ORG])
        started = em.now()
        raw = await read_json(request)
        if isinstance(raw, dict) and "cursor" in raw:
            doc = await self.next_page(request[ORG], raw, started)
        else:
            doc = await self._first_page(request[ORG], raw, started)
        return _ok(doc)

    async def _first_page(self, org: int, raw: Any, started: float) -> dict[str, Any]:
        return await self.serve_first(self.open_flow(org, validate(QueryBody, raw)), started)

    def open_flow(self, org: int, body: QueryBody) -> Flow:
        """The cursor flow a first request opens: its search, cap and exclusions (400/404 replies)."""
        em = self.em
        if len(body.sources()) != 1:
            raise _detail(400, "Exactly one query source is required: search_id, "
                               "simple_filters, filters, parsed_query or query.")
        ceiling = em.settings.query_max_results
        if not 1 <= body.max_results <= ceiling:
            raise _detail(400, f"max_results must be between 1 and {ceiling}")
        resolved = em.searches.for_query(org, body)
        cap = effective_cap(body.max_results, "max_results" in body.model_fields_set,
                            resolved.query_cap, ceiling)
        exclusions = Exclusions.build(resolved.mode, body.exclude_public_ids,
                                      body.exclude_entity_ids)
        wrap = em.settings.wrap_company_list_items and resolved.mode == "company"
        return Flow(org, resolved.search_id, resolved.rows[:cap], body.page_size, exclusions,
                    resolved.extras or {}, wrap_lists=wrap)

    async def serve_first(self, flow: Flow, started: float) -> dict[str, Any]:
        """Page 1 of ``flow``, with the cursor of page 2 while rows remain."""
        em = self.em
        await em.ctx.clock.sleep(em.settings.page_latency_s)
        page = compute_page(flow, 0, 0)
        token = None
        if page.end_offset < flow.cap:
            token = em.cursors.issue(flow, offset=page.end_offset, page_number=2,
                                     cumulative=page.cumulative)
        return self._page_doc(flow, page, 1, token, started)

    async def next_page(self, org: int, raw: dict[str, Any], started: float) -> dict[str, Any]:
        """The page of a cursor-only request (400 for other fields or a bad cursor, 404, 409)."""
        em = self.em
        if set(raw) != {"cursor"}:
            raise _detail(400, "Cursor requests must contain only the cursor field.")
        token = raw["cursor"]
        if not isinstance(token, str):
            raise _detail(400, "Invalid or expired cursor")
        try:
            entry = em.cursors.claim(token, org)
        except CursorError as exc:
            raise _detail(exc.status, exc.detail) from exc
        try:
            await em.ctx.clock.sleep(em.settings.page_latency_s)
            if entry.page is None:  # first read of this cursor; re-reads replay it (INF)
                entry.page = compute_page(entry.flow, entry.offset, entry.cumulative)
                if entry.page.end_offset < entry.flow.cap:
                    entry.next_token = em.cursors.issue(
                        entry.flow, offset=entry.page.end_offset,
                        page_number=entry.page_number + 1, cumulative=entry.page.cumulative)
            return self._page_doc(entry.flow, entry.page, entry.page_number, entry.next_token,
                                  started)
        finally:
            entry.in_flight = False

    def _page_doc(self, flow: Flow, page: Page, number: int, token: str | None,
                  started: float) -> dict[str, Any]:
        duration_ms = int((self.em.now() - started) * 1000)
        return page_doc(flow, page, page_number=number, next_token=token,
                        ttl_s=self.em.settings.cursor_ttl_s, duration_ms=duration_ms)


def find_rows(em: SixtyfourEmulator, mode: str, query: str, limit: int) -> tuple[Row, ...]:
    """The deep search's result set: world matches for ``query`` as Sixtyfour rows, best first.

    A result set depends only on the (immutable) world and ``(mode, query, limit)``, so it is
    computed once per process and shared by every task and sandbox that asks the same.
    """
    return _match_rows(em.ctx.world, mode, query, limit, em.settings.positions_missing_rate)


@functools.lru_cache(maxsize=RESULT_SETS_KEPT)
def _match_rows(world: World, mode: str, query: str, limit: int, positions_missing_rate: float) -> tuple[Row, ...]:
    if mode == "people":
        spec = parse_query(query, "people")
        people = search_people(world, spec, provider="sixtyfour", limit=limit)
        views = [world.person_view("sixtyfour", p) for p, _ in people]  # the hard world's disagreements, if any
        return tuple(
            render_person(world.seed, v, world.company_view("sixtyfour", world.company(v.company_id)),
                          positions_missing_rate=positions_missing_rate)
            for v in views
        )
    spec = parse_query(query, "company")
    companies = search_companies(world, spec, provider="sixtyfour", limit=limit)
    plan = world.disagreements  # the hard world's: a rename's redirecting old domain as the website, if any
    return tuple(render_company(world.seed, world.company_view("sixtyfour", c), plan.website("sixtyfour", c))
                 for c, _ in companies)
