"""``POST /search/export``: asynchronous CSV export of a search (contract §1.4, §5).

Body: exactly one of ``search_id`` (a saved filter search or a completed deep search of the
org) or ``parsed_query`` (a fresh search, see :mod:`.search`), else 400; ``mode``;
``max_results`` 1..5000 (400 outside, as ``/search/query``); inline exclusions. Answer
``{task_id, status: "queued", message}``. The export is a task (``kind="export"``) polled via
``GET /search/status/{task_id}`` (and the legacy path): ``queued`` for ``export_queue_s``,
``running`` for ``export_duration_s`` (INF, default 20 virtual seconds), then ``completed`` with
``resource_handle_id``, ``total_results`` and ``exported_count``; the CSV is served by the usual
``/search/download`` path with the deep-search CSV columns.

Rows: the search's ranking (its ``$limit``/``size`` applies), minus the request's exclusions,
up to ``max_results`` (INF: excluded rows are removed before the cap, as a bulk export would keep
fetching; setting ``export_cap_before_exclusions`` flips it).

While an export of the same ``search_id`` runs in the same org -> 409
``{"detail": "Export workflow is already running for this search.", "task_id": ...}``. The docs
say "poll the existing task_id" without saying how to learn it; ``task_id`` in the 409 body is
our INF extension so a client can adopt the running export.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from aggregator.log import get_logger
from providers.sandbox.server import Reply
from providers.sixtyfour.emulator.http import ORG, detail_error, ok, read_json, validate
from providers.sixtyfour.emulator.jobs import Task
from providers.sixtyfour.emulator.models import ExportBody
from providers.sixtyfour.emulator.rows import Exclusions, Row
from providers.sixtyfour.emulator.search import Resolved

if TYPE_CHECKING:
    from providers.sixtyfour.emulator import SixtyfourEmulator

__all__ = ["CONFLICT_DETAIL", "ExportHandlers"]

log = get_logger(__name__)

CONFLICT_DETAIL = "Export workflow is already running for this search."


class ExportHandlers:
    """``POST /search/export`` bound to one emulator."""

    def __init__(self, em: SixtyfourEmulator) -> None:
        self.em = em

    async def export(self, request: web.Request) -> web.Response:
        em, org = self.em, request[ORG]
        body = validate(ExportBody, await read_json(request))
        if (body.search_id is None) == (body.parsed_query is None):
            raise detail_error(400, "Provide exactly one of search_id or parsed_query.")
        ceiling = em.settings.export_max_results
        if not 1 <= body.max_results <= ceiling:
            raise detail_error(400, f"max_results must be between 1 and {ceiling}")
        resolved = self._resolve(org, body)
        task = self._task(org, body, resolved)
        em.tasks.add(task)
        em.ctx.stats.add("exports_started")
        log.info("sixtyfour.export_started", task_id=task.task_id, org=org,
                 search_id=task.search_id, rows=len(task.delivered))
        return ok({"task_id": task.task_id, "status": "queued",
                   "message": "Export started successfully"})

    def _resolve(self, org: int, body: ExportBody) -> Resolved:
        em, searches = self.em, self.em.searches
        if body.search_id is None:
            return searches.fresh(org, *searches.unpack(body.parsed_query, body.mode))
        running = em.tasks.running_export(org, body.search_id, em.now())
        if running is not None:
            # INF extension (module doc): the running export's id, so the client can poll it.
            raise Reply.json({"detail": CONFLICT_DETAIL, "task_id": running.task_id}, status=409)
        return searches.by_search_id(org, body.search_id)

    def _rows(self, body: ExportBody, resolved: Resolved) -> tuple[Row, ...]:
        rows = resolved.rows[: resolved.query_cap] if resolved.query_cap else resolved.rows
        exclusions = Exclusions.build(resolved.mode, body.exclude_public_ids,
                                      body.exclude_entity_ids)
        if self.em.settings.export_cap_before_exclusions:
            rows = rows[: body.max_results]
        kept = tuple(row for row in rows if not exclusions.excludes(row))
        return kept[: body.max_results]

    def _task(self, org: int, body: ExportBody, resolved: Resolved) -> Task:
        em, ctx, cfg = self.em, self.em.ctx, self.em.settings
        rows = self._rows(body, resolved)
        return Task(
            task_id=ctx.new_uuid(), org=org, mode=resolved.mode, query="", output_mode="csv",
            search_id=resolved.search_id, found=rows, delivered=rows, created_at=em.now(),
            start_time=ctx.clock.now(), queue_s=cfg.export_queue_s,
            duration_s=cfg.export_duration_s, n_iterations=0, error=None,
            resource_handle_id=f"rh_{ctx.new_uuid()}", kind="export",
        )
