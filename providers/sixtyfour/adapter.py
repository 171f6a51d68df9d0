"""Sixtyfour deep search adapter: start -> poll status -> page ``/search/query`` (or CSV download).

Follows contract ``sixtyfour.md``:

- submit (§1.1): ``POST /search/start-deep-search`` with ``search_id`` = our idempotency key
  ("optional client-supplied search ID for idempotent retries"), so a retried start cannot start a
  second search. ``output_mode`` is ``query_only`` unless results are fetched as CSV.
- poll (§1.2): ``GET /search/status/{task_id}``; on 404 fall back once to the legacy
  ``GET /search/deep-search-status/{task_id}`` and keep using it. ``queued``/``pending`` ->
  Pending(queued); ``running`` -> Pending; ``completed`` -> Ready; ``failed`` and Temporal terminal
  statuses (``cancelled``, ``terminated``, ``timed_out``; 3P) -> Failed; anything else -> protocol
  error. Sixtyfour sends no poll hint; the cadence is 10-15 s (DOC).
- fetch via query (§1.5, §2.3): first page ``{search_id, page_size, max_results, exclusions}``,
  then cursor-only ``{"cursor": ...}``. Checkpoint = ``{cursor, seen, page}`` where ``seen`` lists
  the record ids already returned. A 400 on a cursor (expired after 1800 s or invalid) re-runs
  from ``search_id`` and skips what was seen; a 409 (cursor in use) is retried. Short pages do not
  mean the end: only ``has_more`` false / no ``next_cursor`` does.
- fetch via CSV (§1.3): ``GET /search/download`` -> signed URL, fetched *without* the API key.
- structured fields: Sixtyfour takes a natural-language ``query``, so titles, companies, locations
  and schools are sent as the phrase :attr:`SearchRequest.search_text` composes from them
  ("CTO or CEO at Stripe in San Francisco"), after the query they refine unless it is a placeholder.
- exclusions (§1.1): every one is sent as ``exclude_entity_ids`` (people: LinkedIn URLs or public
  ids; companies: domains, LinkedIn company URLs/slugs, numeric ids; Sixtyfour ignores what it
  cannot resolve), and the core checks every returned row against all of them anyway.
- credits (§4.4): pricing is unpublished; ``credits_per_search`` / ``credits_per_result``
  settings (default 0) feed the cost model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from aggregator.config import ProviderSettings
from aggregator.contract import (
    Capabilities,
    Checkpoint,
    CostModel,
    Failed,
    JobRef,
    JobState,
    Page,
    Pending,
    PollPolicy,
    ProviderAdapter,
    ProviderClient,
    Ready,
    Response,
)
from aggregator.errors import ConfigError, InvalidRequestError, ProviderProtocolError
from aggregator.exclusions import Exclusions
from aggregator.log import get_logger
from aggregator.models import Hit, SearchRequest
from providers.sixtyfour.export import download_csv, fetch_via_export
from providers.sixtyfour.filter_ops import FilterSearchMixin
from providers.sixtyfour.wire import (
    PROVIDER,
    QueryResponse,
    StartResponse,
    StatusResponse,
    hit_from_row,
    parse,
)

__all__ = ["SixtyfourAdapter"]

log = get_logger("providers.sixtyfour")

START = "POST /search/start-deep-search"
STATUS = "GET /search/status/{task_id}"
LEGACY_STATUS = "GET /search/deep-search-status/{task_id}"
QUERY = "POST /search/query"

PENDING_STATUSES = {"queued": "queued", "pending": "queued", "running": "running"}
FAILED_STATUSES = {"failed", "cancelled", "canceled", "terminated", "timed_out"}
MAX_EXCLUDE_IDS = 1000  # exclude_entity_ids maxItems (§1.1)
MAX_QUERY_RESULTS = 5000  # /search/query max_results 1..5000 (§2.3)
MAX_CURSOR_RESTARTS = 5  # re-runs from search_id after expired cursors, per job


class SixtyfourAdapter(FilterSearchMixin, ProviderAdapter):
    """Deep search and filter search (people and company mode) over Sixtyfour's search API."""

    name: ClassVar[str] = PROVIDER
    capabilities: ClassVar[Capabilities] = Capabilities(
        modes=frozenset({"people", "company"}), streaming=False, idempotent_submit=True,
        filter_search=True, cost=CostModel(known=False),
    )

    def __init__(self, client: ProviderClient, settings: ProviderSettings) -> None:
        super().__init__(client, settings)
        self.page_size = self.setting("page_size", 100, minimum=1, maximum=100)
        self.fetch_via = self.setting("fetch_via", "query")
        self.credits_per_search = self.setting("credits_per_search", 0.0, minimum=0)
        self.credits_per_result = self.setting("credits_per_result", 0.0, minimum=0)
        self._legacy_status = False
        self._capabilities = {}
        if self.fetch_via not in ("query", "csv", "export"):
            raise ConfigError("providers.sixtyfour.fetch_via",
                              f"must be 'query', 'csv' or 'export', got {self.fetch_via!r}")

    @classmethod
    def poll_policy_from(cls, settings: ProviderSettings) -> PollPolicy:
        return PollPolicy(interval_s=settings.poll_interval_s, max_interval_s=settings.poll_max_interval_s,
                          min_interval_s=min(1.0, settings.poll_interval_s))

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    @property
    def cost(self) -> CostModel:
        return CostModel(per_start=self.credits_per_search, per_result=self.credits_per_result, known=False)

    def validate(self, request: SearchRequest) -> None:
        """Limits and the filters' structure, before any call (fields need ``prepare``)."""
        if len(request.exclude) > MAX_EXCLUDE_IDS:
            raise ConfigError("exclude", f"Sixtyfour accepts at most {MAX_EXCLUDE_IDS} ids")
        self.check_filter_structure(request)

    # -- submit / poll ----------------------------------------------------------------------
    def describe(self, request: SearchRequest) -> dict[str, Any]:
        """The start-deep-search body, or a filter search's first page (``--explain``)."""
        body = (self.filter_first_body(request) if request.is_filter_search
                else self._start_body(request, "<search_id: minted per run>"))
        if request.exclude:
            sent = self.sent_exclusions(request)
            body["exclusions"] = Exclusions.of(request.exclude, request.mode).describe(sent, "exclude_entity_ids")
        return body

    def sent_exclusions(self, request: SearchRequest) -> tuple[str, ...]:
        """Every exclusion: ``exclude_entity_ids`` takes each kind a request can hold (§1.1)."""
        return request.exclude

    async def prepare(self, request: SearchRequest) -> None:
        """Check a filter search against ``filter-capabilities`` before the paid query (§2.1)."""
        if request.is_filter_search:
            await self.check_filters(request)

    def _start_body(self, request: SearchRequest, idempotency_key: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": request.search_text, "mode": request.mode, "max_results": request.max_results,
            "search_id": idempotency_key,
            "output_mode": "csv" if self.fetch_via == "csv" else "query_only",
        }
        if request.exclude:
            body["exclude_entity_ids"] = list(self.sent_exclusions(request))
        return body

    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        if request.is_filter_search:
            return self.filter_job(request, idempotency_key)
        body = self._start_body(request, idempotency_key)
        response = await self.client.request("POST", "/search/start-deep-search", endpoint=START,
                                             json=body, idempotent=True, cost=self.credits_per_search)
        start = parse(StartResponse, response.data, START)
        return JobRef(provider=PROVIDER, job_id=start.task_id, idempotency_key=idempotency_key,
                      mode=request.mode, submitted_at=self._now(),
                      extra={"search_id": idempotency_key, "max_results": request.max_results,
                             "exclude": list(request.exclude)})

    async def _status(self, task_id: str) -> StatusResponse:
        if not self._legacy_status:
            try:
                response = await self.client.request("GET", f"/search/status/{task_id}",
                                                     endpoint=STATUS, idempotent=True)
                return parse(StatusResponse, response.data, STATUS)
            except InvalidRequestError as exc:
                if exc.status != 404:
                    raise
                log.info("sixtyfour.status_fallback", task_id=task_id)
                self._legacy_status = True
        response = await self.client.request("GET", f"/search/deep-search-status/{task_id}",
                                             endpoint=LEGACY_STATUS, idempotent=True)
        return parse(StatusResponse, response.data, LEGACY_STATUS)

    async def poll(self, job: JobRef) -> JobState:
        status = await self._status(job.job_id)
        value = status.status.strip().lower()
        if value in PENDING_STATUSES:
            so_far = None
            if status.iterations:
                last = status.iterations[-1].get("results")
                so_far = last if isinstance(last, int) else None
            return Pending(phase=PENDING_STATUSES[value], progress=status.progress_message,
                           results_so_far=so_far)
        if value == "completed":
            extra = {**job.extra, "search_id": status.search_id or job.extra.get("search_id"),
                     "resource_handle_id": status.resource_handle_id, "total_results": status.total_results}
            return Ready(total_results=status.total_results,
                         job=JobRef(job.provider, job.job_id, job.idempotency_key, job.mode,
                                    job.submitted_at, extra))
        if value in FAILED_STATUSES:
            return Failed(reason=status.error or f"status {value}")
        raise ProviderProtocolError(f"unknown deep search status {status.status!r}",
                                    provider=PROVIDER, endpoint=STATUS, request_id=job.job_id)

    # -- fetch ------------------------------------------------------------------------------
    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        if "first_body" not in job.extra and self.fetch_via == "csv":  # deep searches only
            return await self._fetch_csv(job)
        if "first_body" not in job.extra and self.fetch_via == "export":
            return await fetch_via_export(self.client, job, checkpoint or {},
                                          poll_s=self.settings.poll_interval_s,
                                          credits_per_result=self.credits_per_result)
        return await self._fetch_query_page(job, checkpoint or {})

    def _first_page_body(self, job: JobRef, search_id: str | None) -> dict[str, Any]:
        """A fresh filter search's first body, or a replay of ``search_id`` with exclusions re-sent."""
        if search_id is None and "first_body" in job.extra:
            return dict(job.extra["first_body"])
        body: dict[str, Any] = {
            "search_id": search_id or job.extra.get("search_id") or job.idempotency_key,
            "page_size": self.page_size,
            "max_results": max(1, min(int(job.extra.get("max_results", 1000)), MAX_QUERY_RESULTS)),
        }
        if job.extra.get("exclude"):  # a search_id stores the query, not exclusions (§1.5)
            body["exclude_entity_ids"] = list(job.extra["exclude"])
        return body

    async def _query(self, body: dict[str, Any]) -> QueryResponse:
        """One page. With ``credits_per_result`` set, a full page's price is reserved from the run's
        budget before the call (none is sent that the budget cannot cover) and settled at the rows returned."""
        per_result = self.credits_per_result

        def charged(response: Response) -> float | None:
            rows = response.data.get("results") if isinstance(response.data, dict) else None
            return per_result * len(rows) if isinstance(rows, list) else None

        response = await self.client.request("POST", "/search/query", endpoint=QUERY, json=body,
                                             idempotent=True, retry_on=frozenset({409}),
                                             cost=per_result * self.page_size, charged=charged)
        return parse(QueryResponse, response.data, QUERY)

    async def _fetch_query_page(self, job: JobRef, checkpoint: Checkpoint) -> Page:
        cursor = checkpoint.get("cursor")
        search_id = checkpoint.get("search_id") or job.extra.get("search_id")
        seen: list[str] = list(checkpoint.get("seen", []))
        restarts = int(checkpoint.get("restarts", 0))
        try:
            page = await self._query({"cursor": cursor} if cursor else self._first_page_body(job, search_id))
        except InvalidRequestError as exc:
            if not cursor or exc.status != 400:
                raise
            restarts += 1
            if restarts > MAX_CURSOR_RESTARTS:
                raise
            log.info("sixtyfour.cursor_recovered", job_id=job.job_id, seen=len(seen))
            page = await self._query(self._first_page_body(job, search_id))
        hits = self._new_hits(page, job, seen)
        done = not page.has_more or not page.next_cursor
        next_checkpoint = {"cursor": page.next_cursor, "seen": seen, "restarts": restarts,
                           "search_id": page.search_id or search_id}
        return Page(hits=tuple(hits), checkpoint=next_checkpoint, done=done,
                    credits=self.credits_per_result * len(hits))

    def _new_hits(self, page: QueryResponse, job: JobRef, seen: list[str]) -> list[Hit]:
        seen_set = set(seen)
        now = self._now()
        hits = []
        for row in page.results:
            record_id = str(row.raw_document_id) if row.raw_document_id is not None else None
            if record_id is not None and record_id in seen_set:
                continue
            hit = hit_from_row(row, mode=job.mode, rank=len(seen) + 1, job_id=job.job_id, retrieved_at=now)
            seen.append(hit.provider_record_id)
            seen_set.add(hit.provider_record_id)
            hits.append(hit)
        return hits

    async def _fetch_csv(self, job: JobRef) -> Page:
        handle = job.extra.get("resource_handle_id")
        if not handle:
            raise ProviderProtocolError("completed search has no resource_handle_id for the CSV",
                                        provider=PROVIDER, endpoint=STATUS, request_id=job.job_id)
        return await download_csv(self.client, job, str(handle), self.credits_per_result)

    def _now(self) -> datetime:
        return self.client.clock.now()
