"""Sandbox emulator of Sixtyfour's deep-search API (contract §0-§5; design §4).

Routes (base URL root; every non-``/_`` route needs ``x-api-key``, contract §0):

- ``POST /search/start-deep-search`` -- validate (422 FastAPI-style), replay a known ``search_id``
  (idempotency, §1.1), enforce 5 in-flight searches per org (429 + ``Retry-After``), start a task.
- ``GET /search/status/{task_id}`` and legacy ``GET /search/deep-search-status/{task_id}`` -- one
  handler, ``AgenticSearchStatusResponse`` (§1.2), lifecycle read off the virtual clock.
- ``POST /search/query`` -- cursor paging (§2.3, §5), 200/min/org, over a completed deep search
  (``search_id``) or a fresh filter search (``simple_filters``/``filters``/``parsed_query``/
  people ``query``; saved under a new ``search_id``).
- ``POST /search/start-filter-search`` -- the legacy filter search (§2.4): the ``/search/query``
  first page of its filters plus ``task_id``/``status: "completed"`` of a finished task, so both a
  synchronous client and one that polls ``/search/status`` and downloads the CSV work.
- ``GET /search/filter-capabilities`` and ``POST /search/filter-field-values`` (§2.1, §2.2;
  20/min/org) -- field discovery over the filter-search documents.
- ``POST /search/export`` -- CSV export of a search as a task (§1.4; 409 while one runs).
- ``GET /search/download`` -- a signed URL to ``/_storage/...`` on this server (§1.3), valid 900 s.
- ``GET /_storage/{path}`` -- the "bucket": no auth, HMAC signature + expiry (403 XML otherwise).

Every tenant-visible object (tasks, searches, cursors, limits) is scoped to the org of the key.
Error bodies are ``{"detail": "..."}`` (INF choice, §0). Tunables: :class:`EmulatorSettings`.
Rows come from :mod:`providers.sandbox.matching` over the world (``provider="sixtyfour"``) and are
rendered by :mod:`.rows`; task lifecycle lives in :mod:`.jobs`, paging in
:mod:`.query`, the route handlers in :mod:`.handlers` (deep search, query), :mod:`.legacy`,
:mod:`.discovery` (capabilities, field values), :mod:`.export` and
:mod:`.storage` (download, signed storage). Filter search: documents in
:mod:`.documents`, field catalogue in :mod:`.capabilities`, query engines in
:mod:`.engine` / :mod:`.filters` (simple_filters) / :mod:`.dsl`, query
sources and saved searches in :mod:`.search`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from aggregator.log import get_logger
from providers.sandbox.context import SandboxContext
from providers.sandbox.ratelimit import SlidingWindowLog, retry_after_header
from providers.sandbox.server import Handler, new_app, route_key
from providers.sixtyfour.emulator.documents import DocumentCache
from providers.sixtyfour.emulator.handlers import add_routes
from providers.sixtyfour.emulator.http import ORG, detail_error
from providers.sixtyfour.emulator.jobs import Task, TaskStore
from providers.sixtyfour.emulator.models import EmulatorSettings
from providers.sixtyfour.emulator.query import CursorStore
from providers.sixtyfour.emulator.search import FilterSearch

__all__ = ["ORG", "SixtyfourEmulator", "create_emulator"]

log = get_logger(__name__)


def create_emulator(ctx: SandboxContext, settings: Mapping[str, Any]) -> SixtyfourEmulator:
    """Entry point used by the sandbox runner (its spec's ``emulator``)."""
    return SixtyfourEmulator(ctx, EmulatorSettings.from_mapping(settings))


class SixtyfourEmulator:
    """State and HTTP application of the emulator.

    Attributes:
        app: the aiohttp application.
        settings: effective settings.
        tasks: every deep-search task (test hooks below read and steer it).
        cursors: every ``/search/query`` cursor.
        documents: the filter-search documents per mode (built on first use).
        searches: fresh filter searches and their saved ``search_id``s.
    """

    def __init__(self, ctx: SandboxContext, settings: EmulatorSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.tasks = TaskStore()
        self.cursors = CursorStore(ctx.clock.monotonic, ctx.new_uuid, settings.cursor_ttl_s)
        self.query_limiter = SlidingWindowLog(
            ctx.clock, limit=settings.query_rate_limit, window_s=settings.query_window_s
        )
        self.general_limiter = SlidingWindowLog(
            ctx.clock, limit=settings.general_rate_limit, window_s=settings.general_window_s
        )
        self.field_values_limiter = SlidingWindowLog(
            ctx.clock, limit=settings.field_values_rate_limit,
            window_s=settings.field_values_window_s,
        )
        self.documents = DocumentCache(ctx.world,
                                       positions_missing_rate=settings.positions_missing_rate)
        self.searches = FilterSearch(self)
        for counter in ("idempotent_replays", "storage_requests", "storage_requests_with_api_key",
                        "filter_searches", "exports_started"):
            ctx.stats.declare(counter)
        self.app = new_app(ctx, middlewares=[self._auth_middleware()])
        add_routes(self)
        ctx.stats.track_jobs(self._deep_searches_in_flight)  # /_sandbox/stats peak_jobs_in_flight

    def _deep_searches_in_flight(self) -> int:
        """Unfinished deep searches of every org (exports do not count against the cap, §4.3)."""
        now = self.now()
        return sum(1 for t in self.tasks.tasks.values() if t.kind == "deep_search" and t.in_flight(now))

    # -- test hooks ---------------------------------------------------------------------------

    def list_tasks(self, org: int | None = None) -> list[Task]:
        """Tasks in start order, optionally only ``org``'s."""
        return [t for t in self.tasks.tasks.values() if org is None or t.org == org]

    def task(self, task_id: str) -> Task:
        """The task ``task_id`` (any org); KeyError if unknown."""
        return self.tasks.tasks[task_id]

    def force_complete(self, task_id: str) -> None:
        """End ``task_id`` now (``completed``, or ``failed`` if it was destined to fail)."""
        self.tasks.tasks[task_id].forced_end_at = self.ctx.clock.monotonic()

    def expire_cursor(self, token: str) -> None:
        """Make cursor ``token`` expired now."""
        self.cursors.expire(token)

    # -- shared request plumbing --------------------------------------------------------------

    def now(self) -> float:
        return self.ctx.clock.monotonic()

    def _auth_middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/_"):
                return await handler(request)
            key = request.headers.get("x-api-key")
            org = self.ctx.keys.org_for(self.ctx.provider, key)
            if org is None:
                raise detail_error(401, "Invalid API key")
            self.check_limit(request, self.general_limiter, key)
            request[ORG] = org
            return await handler(request)

        return middleware

    def check_limit(self, request: web.Request, limiter: SlidingWindowLog, key: object) -> None:
        """Raise a 429 reply (counted as rate limited) if ``limiter`` refuses ``key``."""
        delay_s = limiter.acquire(key)
        if delay_s is None:
            return
        self.ctx.stats.count_rate_limited(route_key(request))
        header = retry_after_header(delay_s)
        log.info("sixtyfour.rate_limited", endpoint=route_key(request), retry_after_s=header)
        raise detail_error(429, f"Rate limit exceeded. Retry after {header} seconds.",
                           retry_after_s=delay_s)

