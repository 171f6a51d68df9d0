"""``POST /search/start-filter-search``: the legacy filter-search route (contract §2.4).

The newest OpenAPI calls it a synchronous structured-filter search answering a
``FilterSearchResponse`` with cursor paging, replaced by ``/search/query`` (DOC); Sixtyfour's
skill doc says it answers ``{task_id, status: "queued"}`` and is polled like a deep search, then
downloaded (REPO SK-search). The emulator serves both clients with one answer (INF):

- the first request is a ``/search/query`` first request restricted to the legacy body
  (:class:`~.models.StartFilterSearchBody`: exactly one of ``simple_filters``/``filters``, else
  400; ``mode`` default ``company``; ``max_results`` 1..5000, else 400; ``page_size`` 1..100,
  else 422; ``save_json`` accepted, no JSON file is written). It is the same search, saved under
  a ``search_id``, paged with the same cursors and limited by the same 200/min/org bucket;
- the page also carries ``task_id``, ``status: "completed"`` and the legacy
  ``resource_handle_id``/``exported_count`` fields (on every page of the flow): the task is a
  finished one (``kind="filter_search"``), so ``GET /search/status/{task_id}`` answers
  ``completed`` with ``total_results``, ``search_id`` and ``resource_handle_id`` (its CSV, all rows
  under the cap, through ``GET /search/download``);
- a continuation is ``{"cursor": ...}`` only (other fields -> 400), on this route or on
  ``/search/query`` (one cursor store); ``"cursor": null`` on a first request is ignored (INF: the
  legacy schema lists ``cursor`` among the first request's fields).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from aiohttp import web

from aggregator.log import get_logger
from providers.sixtyfour.emulator.http import ORG, detail_error, ok, read_json, validate
from providers.sixtyfour.emulator.jobs import Task
from providers.sixtyfour.emulator.models import StartFilterSearchBody
from providers.sixtyfour.emulator.query import Flow

if TYPE_CHECKING:
    from providers.sixtyfour.emulator import SixtyfourEmulator
    from providers.sixtyfour.emulator.handlers import DeepSearchHandlers

__all__ = ["PATH", "LegacyFilterSearch"]

log = get_logger(__name__)

PATH = "/search/start-filter-search"


class LegacyFilterSearch:
    """``POST /search/start-filter-search`` bound to one emulator and its query handlers."""

    def __init__(self, em: SixtyfourEmulator, deep: DeepSearchHandlers) -> None:
        self.em = em
        self.deep = deep

    async def start(self, request: web.Request) -> web.Response:
        """A first page (plus its finished task) or, for ``{"cursor": ...}``, the next page."""
        em, org = self.em, request[ORG]
        em.check_limit(request, em.query_limiter, org)  # the /search/query bucket (§4.3)
        started = em.now()
        raw = await read_json(request)
        if isinstance(raw, dict) and raw.get("cursor") is not None:
            return ok(await self.deep.next_page(org, raw, started))
        if isinstance(raw, dict):
            raw = {key: value for key, value in raw.items() if key != "cursor"}
        body = validate(StartFilterSearchBody, raw)
        if (body.simple_filters is None) == (body.filters is None):
            raise detail_error(400, "Exactly one of simple_filters or filters is required.")
        flow = self.deep.open_flow(org, body.as_query())
        task = self._task(org, body.mode, flow)
        em.tasks.add(task)
        log.info("sixtyfour.legacy_filter_search", task_id=task.task_id, org=org,
                 search_id=flow.search_id, rows=flow.cap)
        extras = {**flow.extras, **_task_fields(task)}
        return ok(await self.deep.serve_first(dataclasses.replace(flow, extras=extras), started))

    def _task(self, org: int, mode: str, flow: Flow) -> Task:
        """A task that is already completed, pointing at the flow's search and rows."""
        em, ctx = self.em, self.em.ctx
        now = em.now()
        return Task(
            task_id=ctx.new_uuid(), org=org, mode=mode, query="", output_mode="csv",
            search_id=flow.search_id, found=flow.rows, delivered=flow.rows, created_at=now,
            start_time=ctx.clock.now(), queue_s=0.0, duration_s=1.0, n_iterations=0, error=None,
            resource_handle_id=f"rh_{ctx.new_uuid()}", forced_end_at=now, kind="filter_search",
        )


def _task_fields(task: Task) -> dict[str, Any]:
    return {"task_id": task.task_id, "status": "completed",
            "resource_handle_id": task.resource_handle_id, "exported_count": len(task.delivered)}
