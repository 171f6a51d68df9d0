"""Drives one provider job through submit -> poll -> fetch, under a deadline.

:class:`JobRunner` is provider-agnostic; the adapter supplies the three steps and the
:class:`~aggregator.limits.ProviderLimiter` the job slots. For each run and provider it:

1. mints an idempotency key (or reuses the one a resumed run recorded) and writes it to the
   :class:`~aggregator.jobstore.JobStore` **before** the submit call;
2. waits for one of the provider's concurrent-job slots (Sixtyfour: 5 deep searches per org), so
   a 6th concurrent search queues here instead of drawing the provider's 429 (with a database, the
   slots are leases every process using the account shares: :mod:`aggregator.coordination`);
3. submits, records the :class:`~aggregator.contract.JobRef`, then polls on the adapter's
   :class:`~aggregator.contract.PollPolicy` (server hints win, backoff otherwise), fetching pages
   while pending when the provider streams;
4. releases the job slot when the job is finished at the provider, then fetches the remaining
   pages, journaling each checkpoint, until the results or ``max_results`` are exhausted;
5. asks an extendable job for more (Extruct's resume) while it delivered fewer than
   ``max_results``, and goes back to step 3.

A submit to a provider without idempotency keys that fails ambiguously (reset, timeout, 5xx,
garbled body: it may have started the job) is resolved with ``adapter.find_submitted``: the job
it created is adopted; only when there is none is the submit repeated (``SUBMIT_ATTEMPTS``).

The deadline bounds every wait, not only the steps between them: a job slot, a rate-limit
bucket, a retry's backoff or ``Retry-After``, a request in flight are cut off when it passes.

Every page's hits are checked against the request's exclusions (:mod:`aggregator.exclusions`)
before they are journaled or announced, whatever the provider: an excluded entity is dropped and
counted in the outcome's ``excluded`` (with what the adapter skipped unread, ``Page.excluded``).

Errors never escape: the result is a :class:`~aggregator.models.ProviderOutcome` (``found``,
``no_result``, ``partial`` when some hits arrived before a failure or the deadline, ``failed``).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aggregator.clock import Clock
from aggregator.contract import Checkpoint, Failed, JobRef, Pending, PollPolicy, ProviderAdapter, Ready
from aggregator.errors import (
    AggregatorError,
    BudgetExceededError,
    DeadlineExceededError,
    JobFailedError,
    ProviderConnectionError,
    ProviderError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeoutError,
)
from aggregator.events import Event, HitsEvent, Phase, ProgressEvent
from aggregator.exclusions import Exclusions
from aggregator.http import CallStats, current_call_stats
from aggregator.jobstore import JobRecord, JobStore
from aggregator.limits import ProviderLimiter
from aggregator.log import get_logger
from aggregator.models import ErrorInfo, Hit, OutcomeStatus, ProviderOutcome, SearchRequest
from aggregator.telemetry import instrument as telemetry

__all__ = ["JobRunner", "error_info", "journaled_credits"]

log = get_logger("aggregator.scheduler")

SUBMIT_ATTEMPTS = 3  # submits of a non-idempotent provider, each after checking for a lost one
SUBMIT_BACKOFF_S = 2.0  # doubled per attempt
CLOCK_SKEW_S = 120.0  # provider clocks may run behind ours when matching a lost submit
RESUME_LOOKBACK_S = 86_400.0  # a resumed run looks this far back for a job its lost submit created
CHECKPOINT_KEY, USAGE_KEY = "adapter", "usage"  # the journaled checkpoint: {"adapter": ..., "usage": ...}
AMBIGUOUS = (ProviderConnectionError, ProviderTimeoutError, ProviderServerError, ProviderProtocolError)


def error_info(error: BaseException) -> ErrorInfo:
    """A serializable summary of ``error`` for a :class:`ProviderOutcome`."""
    return ErrorInfo(
        type=type(error).__name__,
        message=str(error),
        endpoint=getattr(error, "endpoint", None),
        status=getattr(error, "status", None),
        retryable=bool(getattr(error, "retryable", False)),
    )


def journaled_credits(record: JobRecord, per_start: float) -> float:
    """Credits a journaled job had spent: its last checkpoint's usage, else its start's charge, else 0."""
    usage = (record.checkpoint or {}).get(USAGE_KEY) or {}
    if "credits" in usage:
        return float(usage["credits"])
    return float(record.job.extra.get("credits", per_start)) if record.job is not None else 0.0


def _same_record(a: Hit, b: Hit) -> bool:
    """Whether two hits carry the same record, read at different times."""
    return a.model_copy(update={"retrieved_at": b.retrieved_at}) == b


class JobRunner:
    """Runs one request on one provider. Create one per (run, provider); call :meth:`run` once."""

    def __init__(
        self,
        *,
        run_id: str,
        adapter: ProviderAdapter,
        request: SearchRequest,
        limiter: ProviderLimiter,
        poll_policy: PollPolicy,
        store: JobStore,
        clock: Clock,
        deadline_at: float,
        emit: Callable[[Event], None],
        sandbox: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.run_id = run_id
        self.adapter = adapter
        self.provider = adapter.name
        self.request = request
        self.limiter = limiter
        self.policy = poll_policy
        self.store = store
        self.clock = clock
        self.deadline_at = deadline_at
        self.emit = emit
        self.stats = CallStats()  # this job's own calls, retries and 429s (the client counts all jobs)
        self.sandbox = sandbox
        self.rng = rng or random.Random()
        self.hits: list[Hit] = []
        self._restored: dict[str, list[Hit]] = {}  # hits an earlier process journaled, by record id
        self.pages = 0
        self.exclusions = Exclusions.of(request.exclude, request.mode)
        self.excluded = 0  # records dropped (or skipped unread) because the request excludes them
        self.credits = 0.0
        self.credits_remaining: float | None = None
        self.job: JobRef | None = None
        self._t0 = clock.monotonic()
        self._started_at: datetime = clock.now()
        self._first_result_s: float | None = None
        self._observed = telemetry.NOOP_JOB  # the job's span and duration (aggregator.telemetry), from run()

    # -- progress ---------------------------------------------------------------------------
    def _progress(self, phase: Phase, message: str | None = None) -> None:
        self.emit(ProgressEvent(self.provider, phase, message, len(self.hits),
                                self.clock.monotonic() - self._t0))

    def _remaining_s(self) -> float:
        return self.deadline_at - self.clock.monotonic()

    def _check_deadline(self) -> None:
        if self._remaining_s() <= 0:
            raise DeadlineExceededError(f"{self.provider}: run deadline reached", job=self.job)

    # -- the three steps --------------------------------------------------------------------
    async def _submit(self) -> JobRef:
        previous = await self.store.get(self.run_id, self.provider)
        key = previous.idempotency_key if previous else str(uuid.uuid4())
        if previous is None:
            await self.store.record_submit_intent(self.run_id, self.provider, key, self.request)
        self._progress("submitting")
        job = await self._adopt_unknown_submit(key) if previous is not None else None
        job = job or await self._submit_once(key)
        await self.store.record_submitted(self.run_id, self.provider, job)
        self.credits += float(job.extra.get("credits", self.adapter.cost.per_start))
        self.credits_remaining = job.extra.get("credits_remaining", self.credits_remaining)
        log.info("job.submitted", provider=self.provider, job_id=job.job_id, idempotency_key=key)
        self._observed.event("submit", {"deepsearch.job_id": job.job_id})
        return job

    async def _adopt_unknown_submit(self, key: str) -> JobRef | None:
        """A resumed run whose submit's outcome is unknown: find that job before submitting again.

        Idempotent providers need nothing (the replayed submit carries the same key and returns the
        same job); the others are asked for a job created with our request in the last day (INF).
        """
        if self.adapter.capabilities.idempotent_submit:
            return None
        since = self.clock.now() - timedelta(seconds=RESUME_LOOKBACK_S)
        found = await self.adapter.find_submitted(self.request, key, since)
        if found is not None:
            log.info("job.adopted_on_resume", provider=self.provider, job_id=found.job_id)
        return found

    async def _submit_once(self, key: str) -> JobRef:
        """Submit, adopting the job of an ambiguous failure instead of starting a second one."""
        since = self.clock.now() - timedelta(seconds=CLOCK_SKEW_S)
        attempt = 1
        while True:
            try:
                return await self.adapter.submit(self.request, key)
            except AMBIGUOUS as exc:
                if self.adapter.capabilities.idempotent_submit or attempt >= SUBMIT_ATTEMPTS:
                    raise
                error = type(exc).__name__
                found = await self.adapter.find_submitted(self.request, key, since)
                if found is not None:
                    log.info("job.adopted", provider=self.provider, job_id=found.job_id, error=error)
                    return found
                log.info("job.resubmitting", provider=self.provider, error=error, attempt=attempt)
                await self._sleep_within_deadline(SUBMIT_BACKOFF_S * 2 ** (attempt - 1))
                attempt += 1

    async def _fetch_page(self, job: JobRef, checkpoint: Checkpoint | None) -> tuple[Checkpoint, bool]:
        room = self.request.max_results - len(self.hits)
        page = await self.adapter.fetch(job, checkpoint, room)
        # a resumed run re-reads the page whose checkpoint a crash lost, and its hits may be stored already:
        # drop a hit identical to a restored one (a lookup's full profile, after its partial one, is not)
        hits = page.hits if not self._restored else [
            hit for hit in page.hits
            if not any(_same_record(hit, h) for h in self._restored.get(hit.provider_record_id, ()))]
        hits, dropped = self.exclusions.split(hits)  # before anything is journaled, announced or reported
        self.excluded += dropped + page.excluded
        new = hits[:room]
        self.pages += page.reads
        self.credits += page.credits
        self._observed.event("page", {"deepsearch.records": len(new), "deepsearch.reads": page.reads,
                                      "deepsearch.credits": page.credits})
        if page.credits_remaining is not None:
            self.credits_remaining = page.credits_remaining
        # journal first (hits, then the checkpoint after them), then announce
        await self.store.record_hits(self.run_id, self.provider, new)
        await self.store.record_checkpoint(self.run_id, self.provider, self._journaled(page.checkpoint))
        if new:
            if self._first_result_s is None:
                self._first_result_s = self.clock.monotonic() - self._t0
            self.hits.extend(new)
            self.emit(HitsEvent(self.provider, tuple(new)))
        return page.checkpoint, page.done or len(self.hits) >= self.request.max_results

    async def _wait_until_ready(
        self, job: JobRef, checkpoint: Checkpoint | None = None
    ) -> tuple[JobRef, Checkpoint | None, bool]:
        if job.extra.get("ready"):  # nothing runs at the provider: fetch at once
            return job, checkpoint, False
        interval = self.policy.interval_s
        exhausted = False
        while True:
            await self._sleep_within_deadline(interval)
            state = await self.adapter.poll(job)
            log.debug("job.polled", provider=self.provider, job_id=job.job_id, state=type(state).__name__)
            self._observed.event("poll", {"deepsearch.state": type(state).__name__.lower(),
                                          "deepsearch.phase": getattr(state, "phase", None) or ""})
            match state:
                case Ready():
                    return state.job or job, checkpoint, exhausted
                case Failed(reason=reason):
                    raise JobFailedError(reason, provider=self.provider, endpoint="poll",
                                         request_id=job.job_id)
                case Pending():
                    self._progress("queued" if state.phase == "queued" else "running", state.progress)
                    if self.adapter.capabilities.streaming and not exhausted:
                        checkpoint, exhausted = await self._fetch_page(job, checkpoint)
                    interval = self._next_interval(interval, state.poll_after_s)

    def _next_interval(self, current: float, hint: float | None) -> float:
        policy = self.policy
        if hint is not None:
            return min(max(hint, policy.min_interval_s), policy.max_interval_s)
        return min(current * policy.backoff, policy.max_interval_s)

    async def _sleep_within_deadline(self, seconds: float) -> None:
        self._check_deadline()
        jitter = self.rng.uniform(0, self.policy.jitter_s) if self.policy.jitter_s else 0.0
        await self.clock.sleep(min(seconds + jitter, max(self._remaining_s(), 0.0)))
        self._check_deadline()

    def _journaled(self, checkpoint: Checkpoint) -> Checkpoint:
        """The adapter's checkpoint plus this job's usage so far, so a resumed run reports the whole spend."""
        usage: dict[str, Any] = {"credits": self.credits, "pages": self.pages,
                                 "credits_remaining": self.credits_remaining}
        if self.exclusions:
            usage["excluded"] = self.excluded
        return {CHECKPOINT_KEY: dict(checkpoint), USAGE_KEY: usage}

    async def _resumed(self) -> tuple[JobRef | None, Checkpoint | None, str | None]:
        """What an earlier process of this run left: its job, checkpoint and state; hits and usage restored."""
        previous = await self.store.get(self.run_id, self.provider)
        if previous is None or previous.job is None:
            return None, None, None
        stored = await self.store.hits(self.run_id, self.provider)
        if stored:
            self.hits = stored
            for hit in stored:
                self._restored.setdefault(hit.provider_record_id, []).append(hit)
            self.emit(HitsEvent(self.provider, tuple(stored)))
        journaled = previous.checkpoint or {}
        usage = journaled.get(USAGE_KEY) or {}
        self.credits = journaled_credits(previous, self.adapter.cost.per_start)
        self.pages = int(usage.get("pages", 0))
        self.excluded = int(usage.get("excluded", 0))
        self.credits_remaining = usage.get("credits_remaining", previous.job.extra.get("credits_remaining"))
        log.info("job.resumed", provider=self.provider, job_id=previous.job.job_id, state=previous.state,
                 hits=len(stored))
        return previous.job, journaled.get(CHECKPOINT_KEY), previous.state

    async def _drive(self) -> None:
        job, checkpoint, state = await self._resumed()
        self.job = job
        if state == "done":
            return
        exhausted = False
        if state != "ready":  # new, or submitted and not yet finished at the provider
            async with self.limiter.job_slot():
                self._check_deadline()
                job = self.job = job or await self._submit()
                job, checkpoint, exhausted = await self._wait_until_ready(job, checkpoint)
                self.job = job
        assert job is not None
        while True:
            # the job as its last poll described it (final status, result handle): a run resumed from
            # "ready" fetches with it, not with the submit's answer
            await self.store.record_submitted(self.run_id, self.provider, job)
            await self.store.record_state(self.run_id, self.provider, "ready")
            self._progress("fetching")
            while not exhausted:
                self._check_deadline()
                checkpoint, exhausted = await self._fetch_page(job, checkpoint)
                self._progress("fetching")
            missing = self.request.max_results - len(self.hits)
            if missing <= 0 or not self.adapter.capabilities.extendable:
                return
            self._check_deadline()
            extended = await self.adapter.extend(job, missing)
            if extended is None:
                return
            log.info("job.extended", provider=self.provider, job_id=job.job_id, additional=missing)
            job, checkpoint, exhausted = await self._wait_until_ready(extended, checkpoint)
            self.job = job

    async def _drive_until_deadline(self) -> None:
        """:meth:`_drive`, cut off at the deadline wherever it waits.

        The deadline checks between steps cannot interrupt a wait inside a step: a job slot, a
        rate-limit bucket, a retry's backoff or ``Retry-After``, a request in flight. The clock's
        remaining seconds times its ``scale`` are the real seconds left (exact for the scaled
        sandbox clock, and for real time), so the event loop's timer bounds every wait.

        Raises:
            DeadlineExceededError: the deadline passed inside a step (also raised by the checks).
        """
        real_s = max(self._remaining_s(), 0.0) * self.clock.scale
        try:
            async with asyncio.timeout(real_s) as scope:
                await self._drive()
        except TimeoutError as exc:
            if not scope.expired():
                raise
            raise DeadlineExceededError(f"{self.provider}: run deadline reached", job=self.job) from exc

    # -- entry point ------------------------------------------------------------------------
    async def run(self) -> ProviderOutcome:
        """Run the job to an outcome. Only cancellation propagates.

        Errors become outcomes: provider errors and the deadline give ``partial`` (some hits
        arrived) or ``failed``; configuration errors ``failed``; an unexpected exception (a bug)
        is logged with its traceback and reported as ``failed``/``partial`` too.
        """
        self._progress("waiting")
        counting = current_call_stats.set(self.stats)  # this job's calls, retries and 429s (not the client's)
        self._observed = telemetry.job_started(self.provider, self.run_id)  # ended by finish()
        self._observed.enter()
        try:
            await self._drive_until_deadline()  # the request was validated when the run was planned
        except (ProviderError, DeadlineExceededError, BudgetExceededError) as exc:
            return await self.finish("partial" if self.hits else "failed", exc)
        except AggregatorError as exc:
            return await self.finish("failed", exc)
        except Exception as exc:  # an adapter bug must not hang or hide the other providers
            log.exception("provider.crashed", provider=self.provider)
            return await self.finish("partial" if self.hits else "failed", exc)
        finally:
            self._observed.leave()
            current_call_stats.reset(counting)
        return await self.finish("found" if self.hits else "no_result", None)

    def exclusion_note(self, sent: int) -> str:
        """Where the request's exclusions were applied, e.g. ``exclusions: 2 of 3 sent to extruct; every
        record checked here, 1 excluded``."""
        where = (f"{sent} of {len(self.exclusions)} sent to {self.provider}" if sent
                 else f"none sent ({self.provider} takes none of them)")
        return f"exclusions: {where}; every record checked here, {self.excluded} excluded"

    async def finish(self, status: OutcomeStatus, error: BaseException | None) -> ProviderOutcome:
        """Record the final state and build the outcome (also used when the run is cut off)."""
        if self.job is not None:  # only a job that ran to its end is done; anything else can be resumed
            done = status in ("found", "no_result") and error is None
            await self.store.record_state(self.run_id, self.provider, "done" if done else "failed")
        if error is not None:
            log.warning("provider.failed", provider=self.provider, error=type(error).__name__,
                        message=str(error), status=status)
        self._progress("failed" if status == "failed" else "done", str(error) if error else None)
        elapsed = self.clock.monotonic() - self._t0
        notes = ["deadline reached; the job can be resumed"] if isinstance(error, DeadlineExceededError) else []
        sent = len(self.adapter.sent_exclusions(self.request)) if self.exclusions else 0
        if self.exclusions:
            notes.append(self.exclusion_note(sent))
        extra: dict[str, Any] = {"note": "; ".join(notes)} if notes else {}
        outcome = ProviderOutcome(
            provider=self.provider, status=status, sandbox=self.sandbox,
            job_id=self.job.job_id if self.job else None, records=len(self.hits), pages=self.pages,
            credits=self.credits, credits_remaining=self.credits_remaining,
            retries=self.stats.retries, excluded=self.excluded, exclusions_sent=sent, started_at=self._started_at,
            finished_at=self.clock.now(), elapsed_s=elapsed,
            time_to_first_result_s=self._first_result_s,
            error=error_info(error) if error else None, **extra,
        )
        self._observed.finished(outcome)
        return outcome
