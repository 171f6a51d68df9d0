"""Sandbox emulator of Extruct's Deep Search API, ``https://api.extruct.ai/v1`` (contract §1-§10).

Routes (every one but the health check needs ``Authorization: Bearer <token>``, §1):

- ``POST /v1/discovery_tasks`` -- validate (FastAPI 422, ``extra="forbid"``), resolve exclusions,
  build the task's candidate pool and grades, answer the task object with ``status: "created"``
  (§4). Counted as ``jobs_started``.
- ``GET /v1/discovery_tasks/{task_id}`` -- the task object now (§3, §5).
- ``GET /v1/discovery_tasks/{task_id}/results?offset=&limit=`` -- the task object plus the
  qualified companies so far, relevance descending, readable while running (§6).
- ``POST /v1/discovery_tasks/{task_id}/resume`` -- raise the target by ``desired_new_results``
  within the 250 cap (§7). Counted as ``resumes``.
- ``GET /v1/discovery_tasks?offset=&limit=`` -- the org's tasks, a bare array, newest first (§8).
- ``GET /v1/user`` -- user/org/credits (§8); ``GET /v1/billing`` -- ``{user, subscription}``, the
  first-party CLI's ``auth user`` probe (REPO, §8, §14); ``GET /v1/healthcheck`` -- no auth (REPO, §1).

Tasks are per org (the org of the token in the sandbox key registry); another org's task is a
404. The pipeline (``created -> in_progress -> done | failed``) runs on the virtual clock, see
:mod:`.tasks`; pools in :mod:`.pool`, grading in :mod:`.grading`,
criteria inference in :mod:`.criteria`, wire documents in :mod:`.render`,
handlers in :mod:`.handlers`, tunables in :class:`.models.EmulatorSettings`.

Credits (REPO §9: 1 credit per match): a task's outcome is deterministic, so -- like the
Sixtyfour emulator -- the matches it will deliver are charged when it is created (and the extra
ones when it is resumed), never again on reads (INF: the moment of charge is UNK). An org whose
balance cannot pay one match gets 402 ``insufficient_credits`` on create/resume; a task whose
outcome exceeds the balance stops at the matches the balance covers (INF).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from aggregator.log import get_logger
from providers.extruct.emulator.handlers import add_routes
from providers.extruct.emulator.http import ORG, billing_error, detail_error
from providers.extruct.emulator.models import EmulatorSettings
from providers.extruct.emulator.tasks import Task, TaskStore
from providers.sandbox.context import SandboxContext
from providers.sandbox.ratelimit import SlidingWindowLog, retry_after_header
from providers.sandbox.server import Handler, new_app, route_key

__all__ = ["ORG", "ExtructEmulator", "bearer_token", "create_emulator"]

log = get_logger(__name__)

HEALTHCHECK_PATH = "/v1/healthcheck"
AUTH_DETAIL = "Could not validate credentials"  # INF wording (FastAPI security default, §1)


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: <scheme> <token>`` when the scheme is ``Bearer`` in any case
    (as FastAPI's ``HTTPBearer``: ``scheme.lower() == "bearer"``, the rest after the first space
    is the token, §1, §14); None without a header, a token or that scheme."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def create_emulator(ctx: SandboxContext, settings: Mapping[str, Any]) -> ExtructEmulator:
    """Entry point used by the sandbox runner (its spec's ``emulator``)."""
    return ExtructEmulator(ctx, EmulatorSettings.from_mapping(settings))


class ExtructEmulator:
    """State and HTTP application of the emulator.

    Attributes:
        app: the aiohttp application.
        settings: effective settings.
        tasks: every discovery task (the test hooks below read and steer it).
        charged: credits charged per org.
    """

    def __init__(self, ctx: SandboxContext, settings: EmulatorSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.tasks = TaskStore()
        self.charged: dict[int, float] = {}
        self.limiter: SlidingWindowLog | None = None
        if settings.rate_limit_per_min is not None:
            self.limiter = SlidingWindowLog(ctx.clock, limit=settings.rate_limit_per_min,
                                            window_s=settings.rate_limit_window_s)  # fmt: skip
        ctx.stats.declare("resumes")
        self.app = new_app(ctx, middlewares=[self._auth_middleware()])
        add_routes(self)
        ctx.stats.track_jobs(self._tasks_in_flight)  # /_sandbox/stats peak_jobs_in_flight

    def _tasks_in_flight(self) -> int:
        """Tasks of every org that are ``created`` or ``in_progress`` now."""
        now = self.now()
        return sum(1 for t in self.tasks.tasks.values() if t.status(now) in ("created", "in_progress"))

    # -- test hooks ---------------------------------------------------------------------------

    def list_tasks(self, org: int | None = None) -> list[Task]:
        """Tasks in creation order, optionally only ``org``'s."""
        return [t for t in self.tasks.tasks.values() if org is None or t.org == org]

    def task(self, task_id: str) -> Task:
        """The task ``task_id`` (any org); KeyError if unknown."""
        return self.tasks.tasks[task_id]

    def force_complete(self, task_id: str) -> None:
        """Run ``task_id`` to its end now: ``done`` with every result it would reach for its
        current target (or ``failed`` if it was drawn to fail first)."""
        task, now = self.tasks.tasks[task_id], self.now()
        kept = [segment for segment in task.segments if segment[0] <= now]
        task.segments = [*kept, (now, task.limit_tau())]

    # -- credits ------------------------------------------------------------------------------

    def balance(self, org: int) -> float:
        """Credits ``org`` has left (``available_credits`` minus what was charged)."""
        return self.settings.available_credits - self.charged.get(org, 0.0)

    def affordable_results(self, org: int) -> int | None:
        """Matches ``org`` can still pay for (None when matches are free)."""
        price = self.settings.credits_per_result
        return None if price <= 0 else max(0, math.floor(self.balance(org) / price + 1e-9))

    def check_billing(self, org: int) -> None:
        """402 unless ``org`` may start paid work (REPO §9: plan gate, then the balance)."""
        if self.settings.plan_required:
            raise billing_error("plan_required", "Deep Search requires a Pro plan. "
                                "Upgrade at https://app.extruct.ai/billing")
        if self.affordable_results(org) == 0:
            raise billing_error("insufficient_credits", "Not enough credits: "
                                f"{self.balance(org):g} available, "
                                f"{self.settings.credits_per_result:g} needed per result")

    def charge(self, org: int, results: int) -> None:
        """Charge ``org`` for ``results`` matches (stats ``credits_charged``)."""
        amount = results * self.settings.credits_per_result
        if amount > 0:
            self.charged[org] = self.charged.get(org, 0.0) + amount
            self.ctx.stats.add("credits_charged", amount)

    # -- shared request plumbing --------------------------------------------------------------

    def now(self) -> float:
        return self.ctx.clock.monotonic()

    def _auth_middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/_") or request.path == HEALTHCHECK_PATH:
                return await handler(request)
            org = self.ctx.keys.org_for(self.ctx.provider, bearer_token(request))
            if org is None:
                raise detail_error(401, AUTH_DETAIL, headers={"WWW-Authenticate": "Bearer"})
            self._check_rate(request, org)
            request[ORG] = org
            try:
                return await handler(request)
            except web.HTTPNotFound as exc:  # FastAPI answers unknown routes in JSON
                raise detail_error(404, "Not Found") from exc
            except web.HTTPMethodNotAllowed as exc:
                raise detail_error(405, "Method Not Allowed") from exc

        return middleware

    def _check_rate(self, request: web.Request, org: int) -> None:
        """UNK limits (§9): when ``rate_limit_per_min`` is set, 429 + ``Retry-After`` per org."""
        if self.limiter is None:
            return
        delay_s = self.limiter.acquire(org)
        if delay_s is None:
            return
        self.ctx.stats.count_rate_limited(route_key(request))
        log.info("extruct.rate_limited", endpoint=route_key(request),
                 retry_after_s=retry_after_header(delay_s))  # fmt: skip
        raise detail_error(429, "Rate limit exceeded", retry_after_s=delay_s)
