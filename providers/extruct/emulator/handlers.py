"""Route handlers of the Extruct emulator (contract §4-§8).

See :mod:`providers.extruct.emulator` for the route list. Handlers answer early by raising
:class:`~providers.sandbox.server.Reply`; everything is scoped to the org of the bearer token,
which the auth middleware stores in ``request[ORG]``.
"""

from __future__ import annotations

import random
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from aggregator.log import get_logger
from providers.extruct.emulator.criteria import Criterion, infer_criteria
from providers.extruct.emulator.http import ORG, detail_error, ok, read_json, unprocessable, validate
from providers.extruct.emulator.models import (
    DATA_SOURCES,
    MAX_DESIRED_RESULTS,
    CreateTaskBody,
    PageQuery,
    ResumeBody,
)
from providers.extruct.emulator.pipeline import build_schedule
from providers.extruct.emulator.pool import build_pool, registered_domain
from providers.extruct.emulator.render import result_doc, task_doc
from providers.extruct.emulator.tasks import Task
from providers.sandbox.server import Reply, route_key

if TYPE_CHECKING:
    from providers.extruct.emulator import ExtructEmulator

__all__ = ["Handlers", "add_routes"]

log = get_logger(__name__)

TASKS_PATH = "/v1/discovery_tasks"
NOT_FOUND = "Task not found"  # INF wording (§5)
EXHAUSTED = "Task is exhausted; create a new task to get more results"  # INF wording (§7)


def add_routes(em: ExtructEmulator) -> None:
    """Register every Extruct route on ``em.app``."""
    h, router = Handlers(em), em.app.router
    router.add_post(TASKS_PATH, h.create)
    router.add_get(TASKS_PATH, h.list_tasks)
    router.add_get(TASKS_PATH + "/{task_id}", h.get)
    router.add_get(TASKS_PATH + "/{task_id}/results", h.results)
    router.add_post(TASKS_PATH + "/{task_id}/resume", h.resume)
    router.add_get("/v1/user", h.user)
    router.add_get("/v1/billing", h.billing)
    router.add_get("/v1/healthcheck", h.healthcheck)


def _limit_error(limit: int, maximum: int) -> Reply:
    item = {"type": "less_than_equal", "loc": ["query", "limit"],
            "msg": f"Input should be less than or equal to {maximum}", "input": str(limit),
            "ctx": {"le": maximum}}  # fmt: skip
    return Reply.json({"detail": [item]}, status=422)


class Handlers:
    """The routes bound to one emulator."""

    def __init__(self, em: ExtructEmulator) -> None:
        self.em = em

    # -- create -------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        """``POST /v1/discovery_tasks`` -> the task object, ``status: "created"`` (§4)."""
        em, org = self.em, request[ORG]
        body = validate(CreateTaskBody, await read_json(request))
        if not body.auto_data_sources and not body.data_sources:
            # REPO (older rule, §4): with auto_data_sources=false, data_sources must be given.
            raise unprocessable(["body", "data_sources"], "data_sources is required when "
                                "auto_data_sources is false", body.data_sources)
        em.check_billing(org)
        excluded = self._exclusions(org, body)
        task = self._new_task(request, org, body, excluded)
        em.tasks.add(task)
        em.ctx.stats.add("jobs_started")
        em.charge(org, task.outcome())
        log.info("extruct.task_created", task_id=task.task_id, org=org,
                 pool=task.schedule.pool_size, results=task.outcome())  # fmt: skip
        return ok(task_doc(task, task.created_at))  # the state at creation (DOC: returns at once)

    def _exclusions(self, org: int, body: CreateTaskBody) -> list[str]:
        """DOC (§4): registered domains of ``exclude_domains`` plus the returned companies of
        ``exclude_task_ids`` (done tasks of the org), sorted; INF 422 beyond the cap."""
        em, now, domains = self.em, self.em.now(), set()
        for i, value in enumerate(body.exclude_domains or ()):
            domain = registered_domain(value)
            if domain is None:
                raise unprocessable(["body", "exclude_domains", i], "not a domain or URL", value)
            domains.add(domain)
        for i, task_id in enumerate(body.exclude_task_ids or ()):
            task = em.tasks.get(str(uuid.UUID(task_id)), org)
            if task is None or task.status(now) != "done":
                raise unprocessable(["body", "exclude_task_ids", i],
                                    "task not found or not done", task_id)  # fmt: skip
            domains.update(em.ctx.world.company(e.company_id).domain for e in task.results(now))
        cap = em.settings.max_exclude_domains
        if len(domains) > cap:
            raise unprocessable(["body", "exclude_domains"], f"at most {cap} domains can be "
                                f"excluded, got {len(domains)}")  # fmt: skip
        return sorted(domains)

    def _new_task(self, request: web.Request, org: int, body: CreateTaskBody,
                  excluded: list[str]) -> Task:  # fmt: skip
        em, ctx, cfg = self.em, self.em.ctx, self.em.settings
        task_id, now, wall = ctx.new_uuid(), em.now(), ctx.clock.now()
        criteria: list[Criterion] = (
            [(c.key, c.name, c.criterion) for c in body.criteria] if body.criteria
            else infer_criteria(body.query)
        )  # fmt: skip
        # INF (§4): auto mode uses every source; echo the given list, else all sources.
        sources = list(body.data_sources or DATA_SOURCES)
        draw_key = self._draw_key(org, body.query)
        discovery_key = (f"{org}|{body.query}|{criteria}|{excluded}" if cfg.repeatable_discovery
                         else draw_key)  # fmt: skip
        pool = build_pool(ctx.world, body.query, task_key=discovery_key, excluded=frozenset(excluded),
                          max_size=cfg.max_pool_size, noise_share=cfg.noise_share,
                          noise_pass_rate=cfg.noise_pass_rate)  # fmt: skip
        schedule = build_schedule(ctx.world, pool, criteria, task_id=task_id, draw_key=discovery_key,
                                  sources=DATA_SOURCES if body.auto_data_sources else sources,
                                  settings=cfg)  # fmt: skip
        task = Task(
            task_id=task_id, org=org, seq=em.tasks.next_seq(), query=body.query,
            desired_num_results=body.desired_num_results, auto_data_sources=body.auto_data_sources,
            data_sources=sources, criteria=criteria, table_id=body.table.id if body.table else None,
            exclude_domains=excluded, created_at=now, created_wall=wall,
            schedule=schedule, fail_tau=None, paid_limit=em.affordable_results(org),
            segments=[(now + cfg.created_s, 0.0)],
        )  # fmt: skip
        if self._fails(request, draw_key):
            task.fail_tau = cfg.fail_at * schedule.stop_at(task.target)
        return task

    def _draw_key(self, org: int, query: str) -> str:
        """The deterministic key of the org's next task (§13): world seed, org, the task's ordinal
        among the org's tasks and its query; never the task id (a random UUID)."""
        return f"{self.em.ctx.world.seed}:{org}:{self.em.tasks.count(org)}:{query}"

    def _fails(self, request: web.Request, draw_key: str) -> bool:
        """Whether the new task is drawn to fail: a ``job_failure`` fault, or ``failure_rate``
        drawn from ``draw_key`` (the same requests on the same seed fail alike, §10.4)."""
        ctx = self.em.ctx
        if ctx.faults.job_fails(ctx.provider, route_key(request)):
            return True
        return random.Random(f"extruct:fail:{draw_key}").random() < self.em.settings.failure_rate

    # -- read ---------------------------------------------------------------------------------

    def _task(self, request: web.Request) -> Task:
        task = self.em.tasks.get(request.match_info["task_id"], request[ORG])
        if task is None:
            raise detail_error(404, NOT_FOUND)
        return task

    def _page(self, request: web.Request, default_limit: int) -> tuple[int, int]:
        query = validate(PageQuery, dict(request.query), where="query")
        limit = default_limit if query.limit is None else query.limit
        if limit > self.em.settings.results_max_limit:
            raise _limit_error(limit, self.em.settings.results_max_limit)
        return query.offset, limit

    async def get(self, request: web.Request) -> web.Response:
        """``GET /v1/discovery_tasks/{task_id}`` -> the task object (§5)."""
        return ok(task_doc(self._task(request), self.em.now()))

    async def results(self, request: web.Request) -> web.Response:
        """``GET .../{task_id}/results`` -> task object + ``results`` page (§6)."""
        em = self.em
        task = self._task(request)
        offset, limit = self._page(request, em.settings.results_default_limit)
        now = em.now()
        doc = task_doc(task, now)
        rows = task.results(now)[offset:offset + limit]
        doc["results"] = [result_doc(task, ev, em.ctx.world, em.settings) for ev in rows]
        return ok(doc)

    async def list_tasks(self, request: web.Request) -> web.Response:
        """``GET /v1/discovery_tasks`` -> bare array of task objects, newest first (§8)."""
        offset, limit = self._page(request, self.em.settings.list_default_limit)
        now = self.em.now()
        tasks = self.em.tasks.newest_first(request[ORG])[offset:offset + limit]
        return ok([task_doc(task, now) for task in tasks])

    # -- resume -------------------------------------------------------------------------------

    async def resume(self, request: web.Request) -> web.Response:
        """``POST .../{task_id}/resume`` -> the updated task object (§7)."""
        em, org = self.em, request[ORG]
        task = self._task(request)
        body = validate(ResumeBody, await read_json(request, empty={}))
        em.check_billing(org)
        now = em.now()
        if task.status(now) == "failed":  # UNK (§7); INF: a failed task cannot continue
            raise detail_error(400, "Task has failed; create a new task")
        if task.is_exhausted(now):
            raise detail_error(400, EXHAUSTED)
        if task.desired_num_results >= MAX_DESIRED_RESULTS:  # INF (§7): cap already reached
            raise detail_error(400, f"Task already targets the maximum of {MAX_DESIRED_RESULTS} results")
        before = task.outcome()
        task.run_from(now)
        wanted = task.desired_num_results + body.desired_new_results
        task.desired_num_results = min(MAX_DESIRED_RESULTS, wanted)
        affordable = em.affordable_results(org)
        task.paid_limit = None if affordable is None else before + affordable
        em.charge(org, task.outcome() - before)
        em.ctx.stats.add("resumes")
        log.info("extruct.task_resumed", task_id=task.task_id, org=org,
                 desired_num_results=task.desired_num_results)  # fmt: skip
        return ok(task_doc(task, now))

    # -- account ------------------------------------------------------------------------------

    def _user_doc(self, org: int) -> dict[str, Any]:
        """The account of ``org``'s token: ``/v1/user``, and ``user`` of ``/v1/billing`` (§8).
        The org counts as active unless ``plan_required`` gates it (REPO §9: paid work needs a
        Pro/legacy plan or an active organization)."""
        seed, balance = self.em.ctx.world.seed, self.em.balance(org)
        return {
            "user_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"extruct-sandbox:{seed}:user:{org}")),
            "email": f"sandbox-user-{org}@example.com",
            "available_credits": int(balance) if float(balance).is_integer() else balance,
            "organization_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"extruct-sandbox:{seed}:org:{org}")),
            "organization_name": f"Sandbox Org {org}",
            "organization_slug": f"sandbox-org-{org}",
            "organization_is_active": not self.em.settings.plan_required,
        }

    async def user(self, request: web.Request) -> web.Response:
        """``GET /v1/user`` (DOC AUTH/USER example, §8)."""
        return ok(self._user_doc(request[ORG]))

    async def billing(self, request: web.Request) -> web.Response:
        """``GET /v1/billing`` -> ``{"user": <the /v1/user object>, "subscription":
        {"requires_subscription": bool, "plan_tier": "pro" | "free"}}`` (REPO CLI/SKILL, §8, §14):
        the first-party CLI's ``auth user`` probe. ``plan_required`` turns the plan gate on
        (``requires_subscription: true``, tier ``free``, INF); otherwise the org is on ``pro``."""
        gated = self.em.settings.plan_required
        return ok({"user": self._user_doc(request[ORG]),
                   "subscription": {"requires_subscription": gated, "plan_tier": "free" if gated else "pro"}})

    async def healthcheck(self, request: web.Request) -> web.Response:
        """``GET /v1/healthcheck`` without auth (REPO, §1); INF body."""
        return ok({"status": "ok"})
