"""Route handlers of the Orbit emulator: start, status, profile read (contract §3, §4, §5).

See :mod:`providers.orbit.emulator` for the route list and the order of checks. The auth
middleware stores the caller's API key in ``request[KEY]`` and its org in ``request[ORG]``;
handlers answer early by raising :class:`~providers.sandbox.server.Reply`.

Start responses (§3.3, flat)::

    202 {"request_id", "run_id": "run_<uuid>", "status": "started",
         "links": {"status": "/v2/developer/deep-search/<request_id>"}}
    200 {... same ids ..., "status": "already_running", "links": {...}}     same requestId + body
    200 {... the status document ..., "links": {"status", "profile"?}}     ... once the run ended
    200 {"request_id", "run_id": null, "status": "completed", "result": {"id"},
         "links": {"profile": "/v2/developer/profiles/<id>"}}                 profileId already full

Every 2xx of start and profile read carries ``X-Developer-API-Credits-Remaining``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from aggregator.log import get_logger
from providers.orbit.emulator.http import api_error, ok, read_body
from providers.orbit.emulator.identity import candidates_for, resolve_person
from providers.orbit.emulator.profiles import materialized_count, profile_payload
from providers.orbit.emulator.request import StartRequest, parse_start
from providers.orbit.emulator.runs import DISCOVERY_FAILURE, IDENTITY_FAILURE, READINESS_FAILURE, Level, Run
from providers.sandbox.entities import PersonEntity
from providers.sandbox.server import route_key

if TYPE_CHECKING:
    from providers.orbit.emulator import OrbitEmulator

__all__ = ["KEY", "ORG", "ROUTES", "add_routes", "finished_doc", "status_doc"]

log = get_logger(__name__)

KEY = web.RequestKey("orbit.api_key", str)
"""The caller's API key (set by the auth middleware)."""
ORG = web.RequestKey("orbit.org", int)
"""The org of the caller's API key (credits belong to it)."""

START_PATH = "/v2/developer/deep-search"
STATUS_PATH = "/v2/developer/deep-search/{requestId}"
PROFILE_PATH = "/v2/developer/profiles/{id}"
ROUTES: dict[str, tuple[str, str]] = {
    f"POST {START_PATH}": ("search:read", "start"),
    f"GET {STATUS_PATH}": ("search:read", "status"),
    f"GET {PROFILE_PATH}": ("profile:read", "profile"),
}
"""Route key -> (required scope, rate-limit bucket) (DOC §1, §4.6, §5)."""


def add_routes(em: OrbitEmulator) -> None:
    """Register every Orbit route on ``em.app``."""
    handlers = Handlers(em)
    em.app.router.add_post(START_PATH, handlers.start)
    em.app.router.add_get(STATUS_PATH, handlers.status)
    em.app.router.add_get(PROFILE_PATH, handlers.profile)


def _links(request_id: str) -> dict[str, str]:
    return {"status": f"/v2/developer/deep-search/{request_id}"}


def _start_doc(run: Run, status: str) -> dict[str, Any]:
    return {"request_id": run.request_id, "run_id": run.run_id, "status": status,
            "links": _links(run.request_id)}  # fmt: skip


def _completed_doc(request_id: str, profile_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "run_id": None, "status": "completed",
            "result": {"id": profile_id}, "links": {"profile": f"/v2/developer/profiles/{profile_id}"}}


def finished_doc(em: OrbitEmulator, run: Run, now: float) -> dict[str, Any]:
    """The start answer to a re-sent ``requestId`` whose run has ended (INF §3.3, §11): what the
    status call answers (``completed`` / ``failed``, ``result``, ``failure``) plus ``links``
    (``status``, and ``profile`` when the result names one)."""
    doc = status_doc(em, run, now)
    links = _links(run.request_id)
    profile_id = (doc.get("result") or {}).get("id")
    if profile_id:
        links["profile"] = f"/v2/developer/profiles/{profile_id}"
    return {**doc, "links": links}


def status_doc(em: OrbitEmulator, run: Run, now: float) -> dict[str, Any]:
    """``GET /v2/developer/deep-search/{requestId}`` of ``run`` at ``now`` (§4)."""
    status = run.status(now)
    doc: dict[str, Any] = {"request_id": run.request_id, "run_id": run.run_id, "status": status,
                           "result": None}  # fmt: skip
    if run.discovery:
        doc["result"] = run.discovery_result(now)
        if status == "failed":
            doc["failure"] = dict(DISCOVERY_FAILURE)
        return doc
    if run.person is None or run.profile_id is None:
        if status == "failed":
            doc["failure"] = dict(IDENTITY_FAILURE)
        return doc
    if status == "generating_sections":
        doc["result"] = {"id": run.profile_id}
    elif status in ("completed", "failed"):
        count = 0
        if status == "completed":
            level = run.level_for(run.person.true_id, now)
            count = materialized_count(em.ctx.world, run.person, run.profile_id, level)
        summary = {"sections_ready": count > 0, "materialized_section_count": count}
        doc["result"] = {"id": run.profile_id, "section_generation": summary}
        if status == "failed":
            doc["failure"] = dict(READINESS_FAILURE)
    return doc


class Handlers:
    """The routes bound to one emulator."""

    def __init__(self, em: OrbitEmulator) -> None:
        self.em = em

    async def start(self, request: web.Request) -> web.Response:
        """``POST /v2/developer/deep-search`` (§3)."""
        em, key, org = self.em, request[KEY], request[ORG]
        now = em.now()
        body = parse_start(await read_body(request))
        request_id = body.request_id or em.ctx.new_uuid()
        replay = self._replay(key, org, request_id, body)
        if replay is not None:
            return replay
        cost = em.settings.credits_per_run
        em.reserve(org, cost)
        immediate = self._immediate(key, org, request_id, body)
        if immediate is not None:
            return immediate
        run = self._new_run(request, request_id, body, now)
        em.add_run(run)
        em.charge(org, cost)
        em.ctx.stats.add("jobs_started")
        log.info("orbit.run_started", request_id=request_id, shape=run.shape, org=org,
                 resolved=run.person is not None, candidates=len(run.candidates))  # fmt: skip
        return ok(_start_doc(run, "started"), status=202, credits=em.balance(org))

    def _replay(self, key: str, org: int, request_id: str, body: StartRequest) -> web.Response | None:
        """§3.4: refunded id -> 409; different body -> 409 conflict (also after the run ended);
        same body -> 200 ``already_running`` while the run goes on, 200 :func:`finished_doc` once it
        ended (INF §3.3); never charged; unknown id -> None."""
        em = self.em
        if (key, request_id) in em.refunded:
            raise api_error(409, "developer_api_idempotency_key_refunded",
                            f"requestId {request_id!r} was refunded; use a new requestId.")
        run = em.runs.get((key, request_id))
        if run is None:
            return None
        if run.fingerprint != body.fingerprint:
            raise api_error(409, "developer_api_idempotency_key_conflict",
                            f"requestId {request_id!r} was already used with different parameters.")
        em.ctx.stats.add("idempotent_replays")
        now = em.now()
        if run.status(now) in ("completed", "failed"):
            return ok(finished_doc(em, run, now), credits=em.balance(org))
        return ok(_start_doc(run, "already_running"), credits=em.balance(org))

    def _immediate(self, key: str, org: int, request_id: str, body: StartRequest) -> web.Response | None:
        """SEED "Regenerate": a ``profileId`` (no ``runShape``) whose profile is already fully
        generated completes at once, refunded (no charge, no run)."""
        em = self.em
        if body.run_shape is not None or body.profile_id is None:
            return None
        person = em.index.by_profile_id(body.profile_id)
        if person is None or em.profile_level(person) < Level.FULL:
            return None
        profile_id = em.index.profile_id(person)
        em.refunded[(key, request_id)] = (body.fingerprint, profile_id)
        return ok(_completed_doc(request_id, profile_id), credits=em.balance(org))

    def _new_run(self, request: web.Request, request_id: str, body: StartRequest, now: float) -> Run:
        em, ctx = self.em, self.em.ctx
        shape = body.effective_shape
        person: PersonEntity | None = None
        candidates: tuple[tuple[PersonEntity, str], ...] = ()
        clusters = 0
        if shape == "candidate_discovery":
            clusters, people = candidates_for(em.index, body, em.settings.max_clusters,
                                              skip_unmatched=em.settings.discovery_skip_unmatched)
            candidates = tuple((p, em.index.profile_id(p)) for p in people[: em.settings.max_candidates])
        else:
            person = resolve_person(em.index, body)
        return Run(request_id=request_id, run_id=f"run_{ctx.new_uuid()}", api_key=request[KEY],
                   org=request[ORG], shape=shape, fingerprint=body.fingerprint, created_at=now,
                   timeline=em.timeline(), fails=ctx.faults.job_fails(ctx.provider, route_key(request)),
                   person=person, profile_id=em.index.profile_id(person) if person else None,
                   candidates=candidates, clusters=clusters)  # fmt: skip

    async def status(self, request: web.Request) -> web.Response:
        """``GET /v2/developer/deep-search/{requestId}`` (§4); another key's run is a 404."""
        em, key, request_id = self.em, request[KEY], request.match_info["requestId"]
        run = em.runs.get((key, request_id))
        if run is not None:
            return ok(status_doc(em, run, em.now()))
        refunded = em.refunded.get((key, request_id))
        if refunded is not None:  # INF: the immediately completed request reads as completed
            doc = _completed_doc(request_id, refunded[1])
            return ok({k: v for k, v in doc.items() if k != "links"})
        raise api_error(404, "developer_deep_search_run_not_found",
                        f"No Deep Search run {request_id!r} for this API key.")

    async def profile(self, request: web.Request) -> web.Response:
        """``GET /v2/developer/profiles/{id}`` (§5). INF: credits are reserved first (402 before
        404, DOC "reserved ... refunded on failure"); a 404 is never charged.

        ``Idempotency-Key`` (DOC CRED: "recommended on profile reads too"; without it every retry is
        charged again): a read repeating a key already charged for the same profile is not charged
        again (INF: replays are kept for the emulator's lifetime); the same key for another profile
        is a 409 ``developer_api_idempotency_key_conflict`` (INF, as for starts, §3.4)."""
        em, org, profile_id = self.em, request[ORG], request.match_info["id"]
        cost = em.settings.credits_per_profile_read
        key = request.headers.get("Idempotency-Key")
        paid_for = em.paid_reads.get((org, key)) if key else None
        if paid_for is not None and paid_for != profile_id:
            raise api_error(409, "developer_api_idempotency_key_conflict",
                            "This Idempotency-Key was already used for another profile.")
        if paid_for is None:
            em.reserve(org, cost)
        person = em.index.by_profile_id(profile_id)
        level = em.profile_level(person) if person is not None else Level.NONE
        if person is None or level == Level.NONE:
            raise api_error(404, "developer_profile_not_found", f"Profile {profile_id!r} was not found.")
        if paid_for is None:
            em.charge(org, cost)
            if key:
                em.paid_reads[(org, key)] = profile_id
        else:
            em.ctx.stats.add("idempotent_replays")
        em.ctx.stats.add("profile_reads")
        payload = profile_payload(em.ctx.world, person, em.index.profile_id(person), level,
                                  verified=em.verified(person))  # fmt: skip
        return ok({"status": "success", "payload": payload}, credits=em.balance(org))
