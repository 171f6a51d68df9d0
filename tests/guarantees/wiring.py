"""The request-sequence layer of the guarantee tests: the real core on an injectable clock.

:class:`Wired` is :class:`tests.harness.Harness` with the clock and retry settings injectable
and one runner per run id, so several jobs of one provider can run concurrently on a
:class:`~tests.fakes.VirtualClock` and share the provider's client and limiter, as the jobs
of concurrent searches do. :class:`RequestLog` registers aioresponses replies that log each
request with the (virtual) second it was sent, in order across URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aioresponses import CallbackResult, aioresponses
from pydantic import SecretStr

from aggregator.budget import CreditBudget, current_budget
from aggregator.clock import Clock
from aggregator.config import HttpSettings, RetrySettings, load_settings
from aggregator.contract import ProviderAdapter
from aggregator.events import Event
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.jobstore import InMemoryJobStore
from aggregator.limits import ProviderLimiter
from aggregator.models import ProviderOutcome, SearchRequest
from aggregator.retry import RetryPolicy
from aggregator.scheduler import JobRunner


class Wired:
    """One provider adapter on the real client, limiter, retry policy and scheduler."""

    def __init__(self, session: aiohttp.ClientSession, adapter_cls: type[ProviderAdapter], base_url: str,
                 api_key: str, *, clock: Clock, retry: RetrySettings | None = None, **settings: Any) -> None:
        self.clock = clock
        self.store = InMemoryJobStore()
        provider_settings = load_settings(env={}).providers[adapter_cls.name].model_copy(
            update={"base_url": base_url, **settings})
        self.limiter = ProviderLimiter(adapter_cls.name, adapter_cls.limits_from(provider_settings), clock)
        self.client = ProviderHTTPClient(
            provider=adapter_cls.name, base_url=base_url, http=HttpClient(HttpSettings(), session),
            limiter=self.limiter, retry=RetryPolicy(retry or RetrySettings(backoff_initial_s=0.5), clock),
            clock=clock, api_key=SecretStr(api_key), auth_headers=adapter_cls.auth_headers,
        )
        self.adapter = adapter_cls(self.client, provider_settings)
        self.events: list[Event] = []

    def runner(self, request: SearchRequest, *, run_id: str = "run-1", deadline_s: float = 10_000.0) -> JobRunner:
        """A job of ``request`` (one per ``run_id``); its deadline is ``deadline_s`` on the clock."""
        return JobRunner(run_id=run_id, adapter=self.adapter, request=request, limiter=self.limiter,
                         poll_policy=type(self.adapter).poll_policy_from(self.adapter.settings),
                         store=self.store, clock=self.clock, deadline_at=deadline_s,
                         emit=self.events.append)


@dataclass
class Sent:
    """One request as the mock received it."""

    at_s: float
    method: str
    url: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None


Reply = Callable[[str, Any], tuple[int, Any, dict[str, str]]]


class RequestLog:
    """aioresponses replies that log every request with the clock second it was sent, in order.

    ``reply(method, url, status=..., payload=..., headers=...)`` answers once (``repeat=True``:
    always); ``raises=`` raises that exception instead (a lost connection); ``answer=`` computes
    ``(status, payload, headers)`` from the URL and the JSON body.
    """

    def __init__(self, mock: aioresponses, clock: Clock) -> None:
        self.mock = mock
        self.clock = clock
        self.sent: list[Sent] = []

    def reply(self, method: str, url: str | re.Pattern[str], *, status: int = 200, payload: Any = None,
              headers: dict[str, str] | None = None, repeat: bool = False, raises: BaseException | None = None,
              answer: Reply | None = None) -> None:
        def callback(called: Any, **kwargs: Any) -> CallbackResult:
            data = kwargs.get("data")
            body = orjson.loads(data) if data else None
            entry = Sent(self.clock.monotonic(), method, str(called), body, dict(kwargs.get("headers") or {}))
            self.sent.append(entry)
            if raises is not None:
                raise raises
            code, doc, extra = answer(str(called), body) if answer else (status, payload, headers or {})
            entry.status = code
            return CallbackResult(status=code, payload=doc, headers=extra)

        self.mock.add(url, method, callback=callback, repeat=repeat)

    def of(self, method: str, contains: str = "") -> list[Sent]:
        """The requests of ``method`` whose URL contains ``contains``, in the order they were sent."""
        return [s for s in self.sent if s.method == method and contains in s.url]


async def run_within_budget(runner: JobRunner, budget: CreditBudget) -> ProviderOutcome:
    """Run a job with ``budget`` as its run's credit budget (as ``Aggregator.search(budget=...)`` does)."""
    token = current_budget.set(budget)
    try:
        return await runner.run()
    finally:
        current_budget.reset(token)
