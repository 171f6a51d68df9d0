"""The instrumentation the run, the scheduler, the HTTP client and the limiter call (internal).

Each hook first checks whether anything listens: the enabled metrics (:data:`metrics.ACTIVE`, one global
read) and, for spans, a tracer. A run or a job asks OpenTelemetry once whether a real tracer provider is
installed (about a microsecond) and hands the answer down in a context variable, so an HTTP attempt
reads one context variable: with neither metrics nor tracing, every hook returns at once.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aggregator.telemetry import metrics as _metrics
from aggregator.telemetry import tracing as _tracing

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the optional extra: no tracer is ever found, so none of these is reached
    pass

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from aggregator.models import ProviderOutcome

__all__ = ["NOOP_JOB", "HttpAttempt", "JobTelemetry", "http_attempt", "job_started", "record_credits",
           "record_retry", "traced_run"]

_tracer_here: ContextVar[Tracer | None] = ContextVar("deepsearch_tracer", default=None)
"""The tracer of the traced run or job running in this task (None: not traced)."""
_run_here: ContextVar[object] = ContextVar("deepsearch_observed_run", default=None)
"""The run whose ``events`` is being observed in this task (its cache may call ``events`` again)."""

AttributeValue = str | bool | int | float | tuple[str, ...]


# -- provider jobs ----------------------------------------------------------------------------
class JobTelemetry:
    """One provider job's span (``deepsearch.job``) and wall-clock start (for the duration histogram)."""

    __slots__ = ("_tokens", "_tracer", "done", "provider", "span", "started")

    def __init__(self, provider: str, span: Span | None, started: float | None, tracer: Tracer | None = None) -> None:
        self.provider = provider
        self.span = span
        self.started = started
        self._tracer = tracer
        self.done = False
        self._tokens: tuple[object, Token[Tracer | None]] | None = None

    def enter(self) -> None:
        """Make the job's span the current one in this task (its HTTP spans become its children)."""
        if self.span is not None:
            token = otel_context.attach(otel_trace.set_span_in_context(self.span))
            self._tokens = (token, _tracer_here.set(self._tracer))

    def leave(self) -> None:
        """Undo :meth:`enter` (in the same task)."""
        if self._tokens is not None:
            token, tracer_token = self._tokens
            self._tokens = None
            _tracer_here.reset(tracer_token)
            otel_context.detach(token)  # type: ignore[arg-type]

    def event(self, name: str, attributes: Mapping[str, AttributeValue]) -> None:
        """An event on the job's span (``submit``, ``poll``, ``page``)."""
        if self.span is not None:
            self.span.add_event(name, attributes)

    def finished(self, outcome: ProviderOutcome) -> None:
        """The job's outcome: the span's closing attributes and end, the duration observed. Once."""
        if self.done:
            return
        self.done = True
        metrics = _metrics.ACTIVE
        if metrics is not None and self.started is not None:
            metrics.job_duration.labels(self.provider, outcome.status).observe(time.perf_counter() - self.started)
        span = self.span
        if span is None:
            return
        attributes: dict[str, AttributeValue] = {
            "deepsearch.status": outcome.status, "deepsearch.records": outcome.records,
            "deepsearch.credits": outcome.credits, "deepsearch.pages": outcome.pages,
            "deepsearch.retries": outcome.retries, "deepsearch.excluded": outcome.excluded}
        if outcome.job_id is not None:
            attributes["deepsearch.job_id"] = outcome.job_id
        if outcome.error is not None:
            attributes["error.type"] = outcome.error.type
        span.set_attributes(attributes)
        if outcome.status == "failed":
            span.set_status(Status(StatusCode.ERROR, outcome.error.type if outcome.error else "failed"))
        span.end()


NOOP_JOB = JobTelemetry("", None, None)
"""A job nobody observes (every method returns at once)."""
NOOP_JOB.done = True


def job_started(provider: str, run_id: str) -> JobTelemetry:
    """A provider job starts in this task: its span (a child of the current one: the run's) if tracing,
    its start time if metrics; :data:`NOOP_JOB` when neither listens."""
    tracer = _tracing.tracer()
    metrics = _metrics.ACTIVE
    if tracer is None and metrics is None:
        return NOOP_JOB
    span = None
    if tracer is not None:
        span = tracer.start_span("deepsearch.job", attributes={"deepsearch.provider": provider,
                                                              "deepsearch.run_id": run_id})
    return JobTelemetry(provider, span, time.perf_counter() if metrics is not None else None, tracer)


# -- HTTP attempts ----------------------------------------------------------------------------
class HttpAttempt:
    """One HTTP exchange being observed: its span (``deepsearch.http``) and/or its request metrics."""

    __slots__ = ("endpoint", "metrics", "provider", "span", "started")

    def __init__(self, provider: str, endpoint: str, span: Span | None, metrics: _metrics.Metrics | None) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.span = span
        self.metrics = metrics
        self.started = time.perf_counter()

    def succeeded(self, status: int) -> None:
        """A response with ``status`` (< 400) came and parsed."""
        self._end(str(status), status, None)

    def failed(self, error: BaseException) -> None:
        """The exchange raised ``error`` (a typed provider error, or a cancellation)."""
        status = getattr(error, "status", None)
        self._end(str(status) if status is not None else type(error).__name__, status, error)

    def _end(self, label: str, status: int | None, error: BaseException | None) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.requests.labels(self.provider, self.endpoint, label).inc()
            metrics.request_duration.labels(self.provider, self.endpoint).observe(time.perf_counter() - self.started)
            if status == 429:
                metrics.rate_limited.labels(self.provider, self.endpoint).inc()
        span = self.span
        if span is None:
            return
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            retry_after = getattr(error, "retry_after_s", None)
            if retry_after is not None:
                span.set_attribute("deepsearch.retry_after_s", float(retry_after))
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def http_attempt(provider: str, endpoint: str, method: str) -> HttpAttempt | None:
    """An HTTP exchange starts (None: nobody observes it). ``endpoint`` is the template, never the URL."""
    tracer = _tracer_here.get()
    metrics = _metrics.ACTIVE
    if tracer is None and metrics is None:
        return None
    span = None
    if tracer is not None:
        span = tracer.start_span("deepsearch.http", kind=SpanKind.CLIENT, attributes={
            "deepsearch.provider": provider, "deepsearch.endpoint": endpoint, "http.request.method": method,
            "deepsearch.attempt": _tracing.attempt_number.get()})
    return HttpAttempt(provider, endpoint, span, metrics)


def _current_span() -> Span | None:
    if _tracer_here.get() is None:
        return None
    return otel_trace.get_current_span()


def record_retry(provider: str, endpoint: str | None, error: BaseException, wait_s: float) -> None:
    """The retry policy scheduled a retry of a call to ``endpoint`` after ``wait_s`` seconds."""
    metrics = _metrics.ACTIVE
    if metrics is not None:
        metrics.retries.labels(provider, endpoint or "unknown").inc()
    span = _current_span()
    if span is not None:
        span.add_event("retry", {"deepsearch.endpoint": endpoint or "unknown", "error.type": type(error).__name__,
                                 "deepsearch.wait_s": float(wait_s)})


def record_credits(provider: str, endpoint: str, credits: float) -> None:
    """A paid call to ``endpoint`` settled at ``credits``."""
    metrics = _metrics.ACTIVE
    if metrics is not None:
        metrics.credits.labels(provider).inc(max(credits, 0.0))
    span = _current_span()
    if span is not None:
        span.add_event("credits", {"deepsearch.endpoint": endpoint, "deepsearch.credits": float(credits)})


# -- runs -------------------------------------------------------------------------------------
F = TypeVar("F", bound=Callable[..., AsyncGenerator[Any, None]])


def traced_run(events: F) -> F:
    """Decorates ``SearchRun.events``: a ``deepsearch.run`` span across the whole generator (started and
    ended explicitly, current only while the run's own code runs, so the provider tasks it creates
    inherit it as their parent) and the run metrics. Without listeners, the undecorated generator."""

    @functools.wraps(events)
    def observed(run: Any) -> AsyncGenerator[Any, None]:
        tracer = _tracing.tracer()
        metrics = _metrics.ACTIVE
        if (tracer is None and metrics is None) or _run_here.get() is run:  # (the run itself, under its cache)
            return events(run)
        return _observe_run(run, events(run), tracer, metrics)

    return cast(F, observed)


async def _observe_run(run: Any, inner: AsyncGenerator[Any, None], tracer: Tracer | None,
                       metrics: _metrics.Metrics | None) -> AsyncGenerator[Any, None]:
    from aggregator.events import ReportEvent, RunStartedEvent

    request = run.request
    span = None
    context = None
    if tracer is not None:
        span = tracer.start_span("deepsearch.run", attributes={
            "deepsearch.mode": request.mode, "deepsearch.providers": tuple(run.plan.providers),
            "deepsearch.max_results": request.max_results, "deepsearch.strategy": str(request.strategy)})
        context = otel_trace.set_span_in_context(span)
    started = time.perf_counter()
    status, records, report = "interrupted", None, None
    try:
        while True:
            run_token = _run_here.set(run)
            token = otel_context.attach(context) if context is not None else None
            tracer_token = _tracer_here.set(tracer)
            try:
                event = await inner.__anext__()
            except StopAsyncIteration:
                break
            finally:
                _tracer_here.reset(tracer_token)
                if token is not None:
                    otel_context.detach(token)
                _run_here.reset(run_token)
            if isinstance(event, RunStartedEvent) and span is not None:
                span.set_attributes({"deepsearch.run_id": event.run_id, "deepsearch.resumed": event.resumed})
            elif isinstance(event, ReportEvent):
                report = event.report
                records = len(report.records)
                status = "done" if report.delivered else "failed"
            yield event
    except (GeneratorExit, asyncio.CancelledError):  # closed early or cancelled: stays "interrupted"
        raise
    except BaseException as exc:
        status = "error"
        if span is not None:
            span.record_exception(exc)
        raise
    finally:
        await inner.aclose()
        if metrics is not None:
            metrics.runs.labels(status).inc()
            metrics.run_duration.observe(time.perf_counter() - started)
            if records is not None:
                metrics.run_records.observe(records)
        if span is not None:
            _end_run_span(span, status, report)


def _end_run_span(span: Span, status: str, report: Any) -> None:
    span.set_attribute("deepsearch.status", status)
    if report is not None:
        span.set_attributes({"deepsearch.run_id": report.run_id, "deepsearch.records": len(report.records),
                             "deepsearch.credits": float(report.total_credits)})
        if hasattr(report, "cached"):  # the result cache's field (None: ran anew)
            span.set_attribute("deepsearch.cached", report.cached is not None)
    if status in ("failed", "error"):
        span.set_status(Status(StatusCode.ERROR, status))
    span.end()
