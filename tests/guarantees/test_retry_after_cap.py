"""A Retry-After above ``retry.max_retry_after_s`` (and within ``max_elapsed_s``) surfaces at once.

Killed mutation: ``RetryPolicy._should_retry`` ignores ``max_retry_after_s`` (aggregator/retry.py).
The value used here, 300 s, is above the 120 s cap and below the 600 s elapsed cap, so only
``max_retry_after_s`` can stop the wait (a value above the elapsed cap, as in the older test, is
stopped by the elapsed cap whatever ``_should_retry`` does).

Request sequence (aioresponses, FakeClock) and sandbox (an injected 429 with ``Retry-After: 300``)
for each provider's submit: one request, no wait, the provider fails with ``RateLimitedError``.
The pure policy test is ``tests/core/test_retry.py``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.config import RetrySettings
from aggregator.contract import ProviderAdapter
from aggregator.models import SearchRequest
from providers.extruct.adapter import ExtructAdapter
from providers.orbit.adapter import OrbitAdapter
from providers.sandbox.faults import FaultRule
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.fakes import FakeClock
from tests.guarantees.wiring import RequestLog, Wired

PEOPLE = "VP of Engineering at Series B SaaS startups in New York"
COMPANIES = "vertical SaaS companies serving freight forwarding"
RETRY = RetrySettings(max_retry_after_s=120.0, max_elapsed_s=600.0, max_attempts=6)  # the defaults, pinned
RETRY_AFTER_S = 300  # above max_retry_after_s, below max_elapsed_s

SUBMITS: dict[str, tuple[type[ProviderAdapter], str, SearchRequest]] = {
    "sixtyfour": (SixtyfourAdapter, "POST /search/start-deep-search", SearchRequest(query=PEOPLE, max_results=5)),
    "orbit": (OrbitAdapter, "POST /v2/developer/deep-search", SearchRequest(query=PEOPLE, max_results=5)),
    "extruct": (ExtructAdapter, "POST /v1/discovery_tasks",
                SearchRequest(query=COMPANIES, mode="company", max_results=5)),
}


@pytest.mark.parametrize("provider", sorted(SUBMITS))
async def test_a_submit_rate_limited_beyond_the_cap_fails_at_once_without_waiting(
    provider: str, session: aiohttp.ClientSession,
) -> None:
    adapter_cls, route, request = SUBMITS[provider]
    method, path = route.split(" ")
    base = f"https://api.{provider}.test"
    clock = FakeClock()
    wired = Wired(session, adapter_cls, base, "key-test", clock=clock, retry=RETRY)
    with aioresponses() as mock:
        log = RequestLog(mock, clock)
        log.reply(method, base + path, status=429, headers={"Retry-After": str(RETRY_AFTER_S)},
                  payload={"detail": "Rate limit exceeded"})
        log.reply(method, base + path, status=500, payload={"detail": "a retry must not be sent"})
        outcome = await wired.runner(request).run()

    assert outcome.status == "failed" and outcome.error is not None, outcome
    assert outcome.error.type == "RateLimitedError" and outcome.error.status == 429
    assert len(log.sent) == 1 and outcome.retries == 0
    assert clock.sleeps == [] and clock.t == 0.0  # nothing waited


@pytest.mark.parametrize("provider", sorted(SUBMITS))
async def test_on_the_sandbox_a_retry_after_beyond_the_cap_is_not_waited_out(
    provider: str, make_aggregator: Any,
) -> None:
    _, route, request = SUBMITS[provider]
    limited = FaultRule(provider=provider, endpoint=route, kind="http_429", first_n=1,
                        retry_after_s=RETRY_AFTER_S)
    agg = await make_aggregator(providers=(provider,), n_companies=600, faults=(limited,),
                                overrides={"retry": RETRY.model_dump()})
    report = await agg.search(request.model_copy(update={"providers": (provider,)}))

    outcome = report.outcome(provider)
    assert outcome.status == "failed" and outcome.error is not None, outcome
    assert outcome.error.type == "RateLimitedError" and outcome.retries == 0
    received = agg.sandbox.requests(provider, route)
    assert [r.status for r in received] == [429]  # no second attempt after 300 s
