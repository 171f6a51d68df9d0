"""Circuit breakers in runs on the sandbox: a provider that fails every call is skipped at once once its
circuit opens (note, no request sent), fallback and race move on without waiting, and with ``[breaker]
enabled = false`` the run retries as it always did."""

from __future__ import annotations

import time
from typing import Any

from aggregator.pipelines import Policy
from providers.sandbox.faults import FaultRule

DEMO = "VP of Engineering at Series B SaaS startups in New York"
PEOPLE = ("sixtyfour", "orbit")
DOWN = (FaultRule("orbit", "*", "http_5xx", 1.0, retry_after_s=None),)
# 3 failures open it; open for 10^6 virtual s (33 real minutes at the test scale): it stays open
BREAKER = {"breaker": {"failures": 3, "cooldown_s": 1e6}, "retry": {"backoff_initial_s": 0.5}}


def orbit_requests(agg: Any) -> int:
    return len(agg.sandbox.requests("orbit"))


async def test_a_step_whose_circuit_is_open_is_skipped_at_once_with_a_note(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=PEOPLE, n_companies=600, faults=DOWN, overrides=BREAKER)
    first = await agg.search(DEMO, max_results=10, providers=("orbit",))
    failed = first.outcome("orbit")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.type == "CircuitOpenError"  # the third failure opened it: not retried further
    assert "circuit open until" in failed.error.message
    assert orbit_requests(agg) == 3 and failed.retries == 2

    second = await agg.search(DEMO, max_results=10, providers=("orbit",))
    skipped = second.outcome("orbit")
    assert skipped.status == "skipped" and skipped.error is not None and skipped.error.type == "CircuitOpenError"
    assert skipped.note is not None and skipped.note.startswith("circuit open until ")
    assert "(3 failures; next probe after " in skipped.note and skipped.note.endswith(" s)")
    assert orbit_requests(agg) == 3  # nothing sent
    breaker = agg.providers.breaker("orbit")
    assert breaker is not None and breaker.state == "open" and breaker.rejected == 1


async def test_fallback_passes_over_an_open_circuit_without_asking_it(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=PEOPLE, n_companies=1000, faults=DOWN, overrides=BREAKER)
    policy = Policy(strategy="fallback", steps=("orbit", "sixtyfour"))
    first = await agg.search(DEMO, max_results=10, policy=policy)
    assert "passed over (error CircuitOpenError)" in (first.outcome("orbit").note or "")
    sent = orbit_requests(agg)

    # the chain passes it over even where only other errors would advance it
    strict = Policy(strategy="fallback", steps=("orbit", "sixtyfour"), advance_on_errors=("AuthError",))
    second = await agg.search(DEMO, max_results=10, policy=strict)
    orbit, sixtyfour = second.outcome("orbit"), second.outcome("sixtyfour")
    assert orbit.status == "skipped" and "fallback: passed over (circuit open)" in (orbit.note or "")
    assert sixtyfour.status == "found" and second.answered_by == ("sixtyfour",)
    assert orbit_requests(agg) == sent


async def test_a_race_starts_the_next_step_at_once_when_the_circuit_is_open(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=PEOPLE, n_companies=1000, faults=DOWN, overrides=BREAKER)
    await agg.search(DEMO, max_results=10, providers=("orbit",))  # opens it
    hedge_s = 1e6  # virtual: 2000 real s; the race must not wait for it
    policy = Policy(strategy="race", steps=("orbit", "sixtyfour"), hedge_delay_s=hedge_s, min_results=3)
    wall0 = time.monotonic()
    report = await agg.search(DEMO, max_results=10, policy=policy)
    assert time.monotonic() - wall0 < 60
    assert report.outcome("orbit").status == "skipped"
    assert report.answered_by == ("sixtyfour",) and "race: won" in (report.outcome("sixtyfour").note or "")
    assert report.elapsed_s < hedge_s


async def test_with_the_breaker_disabled_every_attempt_is_retried_as_before(make_aggregator: Any) -> None:
    overrides = {**BREAKER, "breaker": {"enabled": False}, "retry": {"backoff_initial_s": 0.5, "max_attempts": 4}}
    agg = await make_aggregator(providers=PEOPLE, n_companies=600, faults=DOWN, overrides=overrides)
    assert agg.providers.breaker("orbit") is None
    for _ in range(2):
        report = await agg.search(DEMO, max_results=10, providers=("orbit",))
        outcome = report.outcome("orbit")
        assert outcome.status == "failed" and outcome.error is not None
        assert outcome.error.type == "ProviderServerError"
    assert orbit_requests(agg) == 8  # 4 attempts each, never refused


async def test_a_per_provider_override_applies_to_that_provider_only(make_aggregator: Any) -> None:
    overrides = {"breaker": {"failures": 3, "cooldown_s": 1e6, "providers": {"orbit": {"enabled": False}}}}
    agg = await make_aggregator(providers=PEOPLE, n_companies=600, overrides=overrides)
    assert agg.providers.breaker("orbit") is None
    sixtyfour = agg.providers.breaker("sixtyfour")
    assert sixtyfour is not None and sixtyfour.policy.failures == 3 and sixtyfour.policy.cooldown_s == 1e6


async def test_a_job_in_progress_whose_polls_open_the_circuit_ends_failed_with_the_job_kept(
        make_aggregator: Any) -> None:
    polls_down = (FaultRule("orbit", "GET /v2/developer/deep-search/{requestId}", "http_5xx", 1.0,
                            retry_after_s=None),)
    agg = await make_aggregator(providers=PEOPLE, n_companies=600, faults=polls_down, overrides=BREAKER)
    report = await agg.search(DEMO, max_results=10, providers=("orbit",))
    outcome = report.outcome("orbit")
    assert outcome.status == "failed" and outcome.job_id is not None  # started, then cut off
    assert outcome.error is not None and outcome.error.type == "CircuitOpenError"
    assert len(agg.sandbox.requests("orbit", "POST /v2/developer/deep-search")) == 1
