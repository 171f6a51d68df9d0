"""Extruct deep search adapter: discovery tasks, streamed while they run, resumed to fill up.

Follows contract ``extruct.md``:

- submit (§4): ``POST /v1/discovery_tasks`` with ``query``, ``desired_num_results`` =
  min(max_results, 250) (the task cap), the user's ``criteria`` when given (Extruct infers them
  from the query otherwise) and ``exclude_domains``: the request's domain exclusions as registered
  domains (LinkedIn company URLs and bare ids cannot be sent: Extruct takes domains only, so those
  are applied by the core to what it returns, like every exclusion). Extruct has no idempotency key (§1), so the
  create is never retried blindly: after an ambiguous failure the core calls
  :meth:`ExtructAdapter.find_submitted`, which lists recent tasks (§8) and adopts the one with
  our query, target and criteria created since the attempt began.
- poll (§5, §3.2): ``GET /v1/discovery_tasks/{id}`` every 15-30 s (DOC). Completion is decided by
  ``status`` alone (``done``/``failed``), never by ``is_exhausted``, which can be true while the
  task is still ``in_progress`` (REPO, newer than the docs' "done or is_exhausted").
- fetch (§6): ``GET .../results?offset&limit`` is readable while the task runs and ordered by
  relevance, so a company qualified later can land before rows already read. While running we
  read forward from an offset; once done we re-read from 0 once (a final pass; again after a
  resume). The checkpoint keeps the ids already returned, so nothing is missed or returned twice.
- extend (§7): ``POST .../resume`` with ``desired_new_results`` up to the 250 cap, unless the task
  is exhausted (400) or at the cap.
- credits (§9, REPO): 1 credit per qualified result; counted per result read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
)
from aggregator.errors import ConfigError, InvalidRequestError, ProviderProtocolError
from aggregator.exclusions import Exclusions
from aggregator.log import get_logger
from aggregator.models import Criterion, Hit, SearchRequest
from providers.extruct.wire import PROVIDER, ResultsResponse, Task, TaskList, hit_from_result, parse

__all__ = ["ExtructAdapter", "ExtructOptions"]

log = get_logger("providers.extruct")

CREATE = "POST /v1/discovery_tasks"
LIST = "GET /v1/discovery_tasks"
GET = "GET /v1/discovery_tasks/{task_id}"
RESULTS = "GET /v1/discovery_tasks/{task_id}/results"
RESUME = "POST /v1/discovery_tasks/{task_id}/resume"

TASK_CAP = 250  # desired_num_results 1..250 and the task-level cap (DOC §4, §7)
MAX_EXCLUDE_DOMAINS = 1000  # combined exclusion set (DOC §4)
LIST_LIMIT = 50  # recent tasks scanned when recovering a lost create


class ExtructOptions(BaseModel):
    """Extruct's provider-only inputs (``SearchRequest.options["extruct"]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criteria: tuple[Criterion, ...] = Field(
        (), max_length=20, description="Qualification criteria each company is graded 1-5 on (§4); "
                                       "none: Extruct infers them from the query.")

    @field_validator("criteria")
    @classmethod
    def _unique_keys(cls, value: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        keys = [c.key for c in value]
        repeated = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
        if repeated is not None:
            raise ValueError(f"criteria keys must be unique; {repeated!r} is used twice")
        return value


class ExtructAdapter(ProviderAdapter):
    """Company deep search over Extruct discovery tasks."""

    name: ClassVar[str] = PROVIDER
    capabilities: ClassVar[Capabilities] = Capabilities(
        modes=frozenset({"company"}), streaming=True, extendable=True, idempotent_submit=False,
        cost=CostModel(per_result=1.0),
    )
    options_model: ClassVar[type[BaseModel] | None] = ExtructOptions

    def __init__(self, client: ProviderClient, settings: ProviderSettings) -> None:
        super().__init__(client, settings)
        self.page_size = self.setting("page_size", 100, minimum=1, maximum=TASK_CAP)
        self.credits_per_result = self.setting("credits_per_result", 1.0, minimum=0)
        self._adopted: set[str] = set()

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @classmethod
    def poll_policy_from(cls, settings: ProviderSettings) -> PollPolicy:
        return PollPolicy(interval_s=settings.poll_interval_s, max_interval_s=settings.poll_max_interval_s,
                          min_interval_s=min(5.0, settings.poll_interval_s))

    @property
    def cost(self) -> CostModel:
        return CostModel(per_result=self.credits_per_result)

    def validate(self, request: SearchRequest) -> None:
        if len(request.exclude) > MAX_EXCLUDE_DOMAINS:
            raise ConfigError("exclude", f"Extruct accepts at most {MAX_EXCLUDE_DOMAINS} domains")

    # -- submit -----------------------------------------------------------------------------
    def _create_body(self, request: SearchRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"query": request.query,
                                "desired_num_results": min(request.max_results, TASK_CAP)}
        criteria = self.options(request).criteria
        if criteria:
            body["criteria"] = [c.model_dump() for c in criteria]
        domains = self.sent_exclusions(request)
        if domains:
            body["exclude_domains"] = list(domains)
        return body

    def sent_exclusions(self, request: SearchRequest) -> tuple[str, ...]:
        """The domain exclusions, as registered domains (``exclude_domains`` takes domains only, §4)."""
        return tuple(Exclusions.of(request.exclude, request.mode).domains()) if request.exclude else ()

    def describe(self, request: SearchRequest) -> dict[str, Any]:
        """The create body (``--explain``), and where the request's exclusions are applied."""
        body = self._create_body(request)
        if request.exclude:
            excluded = Exclusions.of(request.exclude, request.mode)
            body["exclusions"] = excluded.describe(self.sent_exclusions(request), "exclude_domains")
        return body

    def _job(self, task: Task, key: str) -> JobRef:
        names = {c.key: c.name or c.key for c in task.criteria}
        return JobRef(provider=PROVIDER, job_id=task.id, idempotency_key=key, mode="company",
                      submitted_at=task.created_at or self.client.clock.now(),
                      extra={"desired_num_results": task.desired_num_results,
                             "is_exhausted": task.is_exhausted, "criteria_names": names,
                             "status": task.status})

    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        body = self._create_body(request)
        # charged per qualified match: reserve the most this task can cost, and ask no more than that
        body["desired_num_results"] = await self.client.affordable(body["desired_num_results"],
                                                                   self.credits_per_result)
        response = await self.client.request("POST", "/v1/discovery_tasks", endpoint=CREATE, json=body,
                                             idempotent=False,
                                             cost=body["desired_num_results"] * self.credits_per_result)
        task = parse(Task, response.data, CREATE)
        self._adopted.add(task.id)
        return self._job(task, idempotency_key)

    async def find_submitted(self, request: SearchRequest, idempotency_key: str,
                             since: datetime) -> JobRef | None:
        """The task our lost create made: same query, target and criteria, created since ``since``."""
        response = await self.client.request("GET", "/v1/discovery_tasks", endpoint=LIST,
                                             params={"offset": "0", "limit": str(LIST_LIMIT)},
                                             idempotent=True)
        body = self._create_body(request)
        keys = [c["key"] for c in body.get("criteria", [])]
        for task in parse(TaskList, response.data, LIST):
            if (task.id in self._adopted or task.query != body["query"]
                    or task.desired_num_results != body["desired_num_results"]
                    or (task.created_at is not None and task.created_at < since)
                    or (keys and [c.key for c in task.criteria] != keys)):
                continue
            self._adopted.add(task.id)
            log.info("extruct.create_recovered", task_id=task.id)
            return self._job(task, idempotency_key)
        return None

    # -- poll -------------------------------------------------------------------------------
    async def _task(self, task_id: str) -> Task:
        response = await self.client.request("GET", f"/v1/discovery_tasks/{task_id}", endpoint=GET,
                                             idempotent=True)
        return parse(Task, response.data, GET)

    async def poll(self, job: JobRef) -> JobState:
        task = await self._task(job.job_id)
        progress = (f"{task.num_results_discovered} discovered, {task.num_results_evaluated} evaluated, "
                    f"{task.num_results} qualified" + (" (pool exhausted)" if task.is_exhausted else ""))
        if task.status == "created":
            return Pending(phase="queued", progress=progress, results_so_far=task.num_results)
        if task.status == "in_progress":  # even when is_exhausted: only status decides (§3.2)
            return Pending(phase="running", progress=progress, results_so_far=task.num_results)
        if task.status == "done":
            return Ready(total_results=task.num_results, job=self._job(task, job.idempotency_key))
        if task.status == "failed":
            return Failed(reason="Extruct reports the discovery task failed")
        raise ProviderProtocolError(f"unknown task status {task.status!r}", provider=PROVIDER,
                                    endpoint=GET, request_id=job.job_id)

    # -- fetch ------------------------------------------------------------------------------
    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        state = dict(checkpoint or {})
        seen: list[str] = list(state.get("seen", []))
        # Once the task is done, read once more from the top. A resume raises the target, so the
        # pass is tied to the target it ran for and runs again after the resumed task is done.
        target = job.extra.get("desired_num_results")
        final = job.extra.get("status") == "done"
        if final and state.get("final_for") != target:
            state.update(final_for=target, offset=0)
        offset = int(state.get("offset", 0))
        response = await self.client.request(
            "GET", f"/v1/discovery_tasks/{job.job_id}/results", endpoint=RESULTS, idempotent=True,
            params={"offset": str(offset), "limit": str(self.page_size)},
        )
        page = parse(ResultsResponse, response.data, RESULTS)
        raw_rows = response.data.get("results", []) if isinstance(response.data, dict) else []
        hits = self._new_hits(page, raw_rows, offset, seen, job)
        state.update(offset=offset + len(page.results), seen=seen)
        done = final and len(page.results) < self.page_size
        credits = self.credits_per_result * len(hits)
        return Page(hits=tuple(hits), checkpoint=state, done=done, credits=credits)

    def _new_hits(self, page: ResultsResponse, raw_rows: list[Any], offset: int, seen: list[str],
                  job: JobRef) -> list[Hit]:
        names = {c.key: c.name or c.key for c in page.criteria} or dict(job.extra.get("criteria_names", {}))
        known = set(seen)
        now = self.client.clock.now()
        hits = []
        for index, result in enumerate(page.results):
            if result.id in known:
                continue
            raw = raw_rows[index] if index < len(raw_rows) and isinstance(raw_rows[index], dict) else None
            hits.append(hit_from_result(result, rank=offset + index + 1, criteria_names=names,
                                        retrieved_at=now, raw=raw))
            known.add(result.id)
            seen.append(result.id)
        return hits

    # -- extend -----------------------------------------------------------------------------
    async def extend(self, job: JobRef, additional: int) -> JobRef | None:
        desired = int(job.extra.get("desired_num_results", TASK_CAP))
        if job.extra.get("is_exhausted") or desired >= TASK_CAP or additional <= 0:
            return None
        body = {"desired_new_results": await self.client.affordable(min(additional, TASK_CAP - desired),
                                                                     self.credits_per_result)}
        try:
            response = await self.client.request("POST", f"/v1/discovery_tasks/{job.job_id}/resume",
                                                 endpoint=RESUME, json=body, idempotent=False,
                                                 cost=body["desired_new_results"] * self.credits_per_result)
        except InvalidRequestError as exc:
            if exc.status == 400:  # exhausted or at the cap meanwhile (§7)
                return None
            raise
        return self._job(parse(Task, response.data, RESUME), job.idempotency_key)
