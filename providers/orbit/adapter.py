"""Orbit developer Deep Search adapter: candidate discovery for people search, and lookups.

Follows contract ``orbit.md``:

- submit (§3): ``POST /v2/developer/deep-search`` with ``requestId`` = our idempotency key (minted
  once, journaled before the call, the same bytes on every retry). A search sends
  ``runShape: candidate_discovery`` with the ``structuredIntent`` of :mod:`providers.orbit.intent`;
  a lookup sends the identity signals and the chosen run shape. One logical start costs 10
  credits, whether the answer is 202 ``started``, 200 ``already_running`` (our retry after a
  lost 202: charged once) or 200 with the run already ended (``completed`` / ``failed`` with a
  ``run_id``: a retry or resume that found our run finished, §3.3; polled like any run); 200
  ``completed`` with ``run_id: null`` (a ``profileId`` already generated) is refunded.
  A 409 ``developer_api_idempotency_key_conflict`` is an
  :class:`~aggregator.errors.InvalidRequestError` with that ``code``: never retried, never a
  second run.
- poll (§4): ``GET /v2/developer/deep-search/{requestId}`` a few seconds apart with backoff (DOC).
  ``running`` / ``generating_sections`` -> Pending; ``completed`` -> Ready; ``failed`` -> Failed with
  ``failure.code`` (e.g. ``identity_not_corroborated``); other values -> protocol error. The latest
  ``result`` (candidate ids, profile id) is kept for fetch.
- fetch (§5): ``GET /v2/developer/profiles/{id}`` (1 credit each) for every candidate not read yet,
  while the run is still going; the checkpoint is the list of profile ids read (and skipped). A
  lookup reads the partial profile as soon as ``result.id`` appears (``generating_sections``), then
  the full one once completed. ``X-Developer-API-Credits-Remaining`` is reported in the outcome.
- exclusions: Deep Search takes none (§3.1 allowlist), so none is sent. A candidate whose profile id
  the request excludes is never read (its identity is known before the paid read); a person excluded
  by LinkedIn URL is known only from the profile, so the core drops that hit after its read, and a
  lookup whose partial profile is excluded does not read the full one.
- structured fields: the ``structuredIntent`` of :func:`~providers.orbit.intent.intent_for`; a second
  company or location cannot be expressed in the DSL (§7), so :meth:`OrbitAdapter.unsupported` refuses it.
- rate limits (§4.6): start 5/s burst 25 and a separate status bucket (its value is not published;
  10/s burst 20 here, a setting); profile reads 50/s (live docs; the older repo said 120/min).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from aggregator.budget import BalanceLedger
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
from providers.orbit.intent import inexpressible, intent_for
from providers.orbit.wire import (
    PROVIDER,
    ProfileResponse,
    StartResponse,
    StatusResponse,
    StatusResult,
    hit_from_profile,
    parse,
)

__all__ = ["OrbitAdapter", "OrbitOptions"]

log = get_logger("providers.orbit")

START = "POST /v2/developer/deep-search"
STATUS = "GET /v2/developer/deep-search/{requestId}"
PROFILE = "GET /v2/developer/profiles/{id}"
CREDITS_HEADER = "X-Developer-API-Credits-Remaining"
PENDING = {"started", "already_running", "queued", "running", "generating_sections"}


RunShape = Literal["partial_only", "partial_plus_full", "full_generation_only"]


class OrbitOptions(BaseModel):
    """Orbit's provider-only inputs (``SearchRequest.options["orbit"]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    structured_intent: dict[str, Any] | None = Field(
        None, description="A structuredIntent v1 used as-is (validated against the DSL first, §3.2).")
    run_shape: RunShape = Field(
        "partial_plus_full", description="A lookup's run shape: partial then full, or one of them (§3.1).")


class OrbitAdapter(ProviderAdapter):
    """People search (candidate discovery) and single-person lookups over Orbit Deep Search."""

    name: ClassVar[str] = PROVIDER
    capabilities: ClassVar[Capabilities] = Capabilities(
        modes=frozenset({"people"}), streaming=True, idempotent_submit=True, lookup=True,
        cost=CostModel(per_start=10.0, per_read=1.0),
    )
    options_model: ClassVar[type[BaseModel] | None] = OrbitOptions

    def __init__(self, client: ProviderClient, settings: ProviderSettings) -> None:
        super().__init__(client, settings)
        self.credits_per_run = self.setting("credits_per_run", 10.0, minimum=0)
        self.credits_per_read = self.setting("credits_per_profile_read", 1.0, minimum=0)
        self.profile_batch = self.setting("profile_batch", 10, minimum=1)
        self._latest: dict[str, StatusResult] = {}
        self._ledger = BalanceLedger()  # reconciles charges with X-Developer-API-Credits-Remaining
        self._read_price = self.credits_per_read  # what a profile read was last seen to cost

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @classmethod
    def poll_policy_from(cls, settings: ProviderSettings) -> PollPolicy:
        return PollPolicy(interval_s=settings.poll_interval_s, max_interval_s=settings.poll_max_interval_s,
                          min_interval_s=1.0, backoff=1.5)

    @property
    def cost(self) -> CostModel:
        return CostModel(per_start=self.credits_per_run, per_read=self.credits_per_read)

    def unsupported(self, request: SearchRequest) -> ConfigError | None:
        """A second company or location: the DSL cannot ask for any of several (see :func:`inexpressible`)."""
        if request.identity is not None or self.options(request).structured_intent is not None:
            return None
        return inexpressible(request)

    def validate(self, request: SearchRequest) -> None:
        if request.identity is not None:
            return
        options: OrbitOptions = self.options(request)
        if options.structured_intent is not None and request.has_fields:
            raise ConfigError("options.orbit.structured_intent",
                              "a raw intent is sent as-is, so structured fields (titles, companies, locations, "
                              "schools) would not reach Orbit: give the intent or the fields, not both")
        intent_for(request, options.structured_intent)  # raises ConfigError naming the DSL rule

    def start_body(self, request: SearchRequest, request_id: str) -> dict[str, Any]:
        """The deep-search body for ``request`` (also shown by ``--explain``)."""
        body: dict[str, Any] = {"requestId": request_id}
        identity = request.identity
        options: OrbitOptions = self.options(request)
        if identity is None:
            return {**body, "runShape": "candidate_discovery",
                    "structuredIntent": intent_for(request, options.structured_intent)}
        body["runShape"] = options.run_shape
        signals = {"linkedinUrl": identity.linkedin_url, "email": identity.email,
                   "phoneNumber": identity.phone_number, "profileId": identity.profile_id,
                   "urls": list(identity.urls) or None, "usernames": list(identity.usernames) or None}
        return {**body, **{k: v for k, v in signals.items() if v}}

    @staticmethod
    def _remaining(response: Response) -> float | None:
        value = {k.lower(): v for k, v in response.headers.items()}.get(CREDITS_HEADER.lower())
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    # -- submit / poll ----------------------------------------------------------------------
    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        body = self.start_body(request, idempotency_key)
        response = await self.client.request("POST", "/v2/developer/deep-search", endpoint=START, json=body,
                                             idempotent=True, cost=self.credits_per_run,
                                             charged=self._start_charge)
        start = parse(StartResponse, response.data, START)
        extra: dict[str, Any] = {"run_shape": body["runShape"], "credits": response.credits_charged,
                                 "credits_remaining": self._remaining(response), "status": start.status,
                                 "run_id": start.run_id}
        if request.exclude:  # fetch skips excluded candidates unread (kept with the job, so a resume does too)
            extra["exclude"] = list(request.exclude)
        if start.status == "completed" and start.result and start.result.get("id"):
            extra["profile_id"] = str(start.result["id"])
        log.info("orbit.started", request_id=start.request_id, status=start.status, charged=response.credits_charged)
        return JobRef(provider=PROVIDER, job_id=start.request_id, idempotency_key=idempotency_key,
                      mode="people", submitted_at=self.client.clock.now(), extra=extra)

    async def _status(self, job: JobRef) -> StatusResponse:
        response = await self.client.request("GET", f"/v2/developer/deep-search/{job.job_id}",
                                             endpoint=STATUS, idempotent=True)
        status = parse(StatusResponse, response.data, STATUS)
        if status.result is not None:
            self._latest[job.job_id] = status.result
        return status

    @staticmethod
    def _immediate(status: Any, run_id: Any) -> bool:
        """A ``profileId`` start that completed at once: no run (``run_id: null``), refunded (§3.3, §3.4).
        A ``completed`` answer with a ``run_id`` is our own run, found finished by a re-sent ``requestId``."""
        return status == "completed" and run_id is None

    async def poll(self, job: JobRef) -> JobState:
        if self._immediate(job.extra.get("status"), job.extra.get("run_id")):  # no run to poll
            return Ready(total_results=1, job=job)
        status = await self._status(job)
        result = status.result or StatusResult()
        if status.status in PENDING:
            found = len(result.candidate_profile_ids) or (1 if result.id else 0)
            progress = result.current_phase or status.status.replace("_", " ")
            if result.candidate_count is not None:
                saved = len(result.candidate_profile_ids)
                progress += f": {result.candidate_count} candidates, {saved} saved"
            return Pending(phase="running", progress=progress, results_so_far=found)
        if status.status == "completed":
            extra = {**job.extra, "status": "completed"}
            if result.id:
                extra["profile_id"] = result.id
            return Ready(total_results=len(result.candidate_profile_ids) or (1 if result.id else 0),
                         job=JobRef(job.provider, job.job_id, job.idempotency_key, job.mode,
                                    job.submitted_at, extra))
        if status.status == "failed":
            failure = status.failure
            reason = f"{failure.code}: {failure.message}" if failure and failure.code else "run failed"
            return Failed(reason=reason)
        raise ProviderProtocolError(f"unknown deep search status {status.status!r}", provider=PROVIDER,
                                    endpoint=STATUS, request_id=job.job_id)

    # -- credits (§3.4, §8) -----------------------------------------------------------------
    def _start_charge(self, response: Response) -> float:
        """What a start cost: the balance header's drop (capped at the price), but 0 for an immediate
        completion, which §3.4 refunds. ``already_running`` (or a run found already ended) answers our
        own retry after a lost 202; that 202 was charged once, and the header shows it."""
        charge = self._ledger.charge(self._remaining(response), self.credits_per_run)
        data = response.data if isinstance(response.data, dict) else {}
        return 0.0 if self._immediate(data.get("status"), data.get("run_id")) else charge

    def _read_charge(self, response: Response) -> float:
        """What a successful profile read cost this run: the balance header's drop (capped at the price);
        a read whose balance did not drop is a replay of our own ``Idempotency-Key``, which Orbit charged
        once already, to an attempt or an earlier process of this run whose charge was never counted (a
        lost response, or a page whose checkpoint a crash lost): it counts at the last observed read price.
        """
        charged = self._ledger.charge(self._remaining(response), self.credits_per_read)
        if charged > 0:
            self._read_price = charged
            return charged
        return self._read_price

    # -- fetch ------------------------------------------------------------------------------
    async def _profile(self, profile_id: str, rank: int, job: JobRef) -> tuple[Hit | None, float | None, float]:
        """One profile read: the hit (None if the profile is gone: refunded), balance, credits charged.

        The ``Idempotency-Key`` is derived from the job's key and the profile id, so a retry, and a
        resumed run re-reading a profile whose hit a crash lost, is not charged twice (DOC CRED).
        """
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"orbit-read:{job.idempotency_key}:{profile_id}"))
        try:
            response = await self.client.request("GET", f"/v2/developer/profiles/{profile_id}",
                                                 endpoint=PROFILE, idempotent=True, cost=self.credits_per_read,
                                                 charged=self._read_charge, headers={"Idempotency-Key": key})
        except InvalidRequestError as exc:
            if exc.status == 404:  # developer_profile_not_found: refunded, nothing to read
                log.warning("orbit.profile_missing", profile_id=profile_id)
                return None, None, 0.0
            raise
        profile = parse(ProfileResponse, response.data, PROFILE)
        raw = response.data.get("payload") if isinstance(response.data, dict) else None
        hit = hit_from_profile(profile.payload, rank=rank, job_id=job.job_id,
                               retrieved_at=self.client.clock.now(), raw=raw)
        return hit, self._remaining(response), response.credits_charged or 0.0

    async def _result(self, job: JobRef) -> StatusResult:
        if job.job_id not in self._latest and not job.extra.get("profile_id"):
            await self._status(job)  # e.g. a resumed run: learn what exists (a finished search's candidates too)
        return self._latest.get(job.job_id, StatusResult(id=job.extra.get("profile_id")))

    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        state: dict[str, Any] = dict(checkpoint or {})
        finished = job.extra.get("status") == "completed"
        result = await self._result(job)
        if job.extra.get("run_shape") == "candidate_discovery":
            return await self._fetch_candidates(job, state, result, finished, limit)
        return await self._fetch_lookup(job, state, result, finished)

    async def _read(self, job: JobRef, wanted: list[tuple[str, int]]
                    ) -> tuple[list[Hit], float | None, float, list[str]]:
        """Read profiles concurrently: the hits, the lowest balance reported, the credits charged and
        the ids read. A read that fails never discards the others, which were paid for: their hits
        come back and the failed ids stay unread (the next fetch tries them again, and a budget
        refusal then comes before any payment). Only when every read failed is the first error raised.
        """
        answers = await asyncio.gather(*(self._profile(pid, rank, job) for pid, rank in wanted),
                                       return_exceptions=True)
        read = [(pid, answer) for (pid, _), answer in zip(wanted, answers, strict=True)
                if not isinstance(answer, BaseException)]
        failures = [answer for answer in answers if isinstance(answer, BaseException)]
        if failures and not read:
            raise failures[0]
        if failures:
            log.warning("orbit.profile_reads_failed", failed=len(failures), kept=len(read),
                        error=type(failures[0]).__name__)
        hits = [hit for _, (hit, _, _) in read if hit is not None]
        balances = [left for _, (_, left, _) in read if left is not None]
        charged = sum(charge for _, (_, _, charge) in read)
        return hits, (min(balances) if balances else None), charged, [pid for pid, _ in read]

    async def _fetch_candidates(self, job: JobRef, state: dict[str, Any], result: StatusResult,
                                finished: bool, limit: int | None) -> Page:
        read: list[str] = list(state.get("read", []))
        ids = result.candidate_profile_ids
        done_ids = set(read)
        unread = [(pid, rank) for rank, pid in enumerate(ids, start=1) if pid not in done_ids]
        # an excluded candidate is known by its profile id before the paid read: never read it
        excluded = self._exclusions(job)
        skipped = [pid for pid, _ in unread if excluded.excludes_record(pid)]
        unread = [(pid, rank) for pid, rank in unread if pid not in skipped]
        # every read costs a credit: never read more profiles than the run still wants or can pay for
        batch = unread[: min(self.profile_batch, limit if limit is not None else self.profile_batch,
                             await self.client.affordable(len(unread), self.credits_per_read))]
        hits, remaining, charged, read_now = await self._read(job, batch)
        read += skipped + read_now
        done = finished and len(unread) <= len(read_now)
        return Page(hits=tuple(hits), checkpoint={**state, "read": read}, done=done,
                    credits=charged, credits_remaining=remaining, reads=len(read_now), excluded=len(skipped))

    @staticmethod
    def _exclusions(job: JobRef) -> Exclusions:
        return Exclusions.of(job.extra.get("exclude") or (), "people")

    async def _fetch_lookup(self, job: JobRef, state: dict[str, Any], result: StatusResult,
                            finished: bool) -> Page:
        profile_id = result.id or job.extra.get("profile_id")
        stage = "full" if finished else "partial"
        if not profile_id or state.get(stage) == profile_id or (stage == "partial" and state.get("full")):
            return Page(hits=(), checkpoint=state, done=finished, reads=0)
        if state.get("excluded") == profile_id:  # its partial profile was excluded: do not pay for the full one
            return Page(hits=(), checkpoint={**state, stage: profile_id}, done=finished, reads=0)
        hits, remaining, charged, _ = await self._read(job, [(str(profile_id), 1)])
        checkpoint = {**state, stage: profile_id}
        if any(self._exclusions(job).matches(hit) for hit in hits):
            checkpoint["excluded"] = profile_id  # the core drops this hit; remember it for the next stage
        return Page(hits=tuple(hits), checkpoint=checkpoint, done=finished,
                    credits=charged, credits_remaining=remaining)

    def describe(self, request: SearchRequest) -> Mapping[str, Any]:
        """What a search would send (``--explain``), with a placeholder request id, and where the
        request's exclusions are applied (Orbit takes none)."""
        body = self.start_body(request, "<requestId: minted per run>")
        if request.exclude:
            excluded = Exclusions.of(request.exclude, request.mode)
            body["exclusions"] = excluded.describe((), None, before_read=(
                "a candidate whose Orbit profile id is excluded is never read; a person excluded by LinkedIn "
                "URL or public id is known only from the profile, so that read (1 credit) is paid and the "
                "record dropped"))
        return body
