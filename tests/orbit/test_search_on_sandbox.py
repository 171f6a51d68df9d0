"""Orbit people search and lookups end to end over real sockets, on the time-scaled sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

from aggregator.core import Aggregator
from aggregator.events import HitsEvent, ProgressEvent
from aggregator.models import Person, PersonIdentity
from providers.sandbox.faults import FaultRule

DEMO = "VP of Engineering at Series B SaaS startups in New York"
START = "POST /v2/developer/deep-search"
STATUS = "GET /v2/developer/deep-search/{requestId}"


async def orbit(make_aggregator: Any, **kwargs: Any) -> Aggregator:
    agg: Aggregator = await make_aggregator(providers=("orbit",), **kwargs)
    return agg


def stats(agg: Aggregator) -> dict[str, Any]:
    document: dict[str, Any] = agg.sandbox.stats()["providers"]["orbit"]
    return document


async def test_the_demo_query_finds_matching_candidates_and_reports_credits(make_aggregator: Any) -> None:
    agg = await orbit(make_aggregator)
    report = await agg.search(DEMO, max_results=50, providers=("orbit",))

    outcome = report.outcome("orbit")
    assert outcome.status == "found" and outcome.records >= 10
    world = agg.sandbox.world
    by_slug = {p.linkedin_slug: p for p in world.people}
    for record in report.records:
        person = record.entity
        assert isinstance(person, Person) and person.linkedin_url
        truth = by_slug[person.linkedin_url.rsplit("/", 1)[1]]
        assert truth.title == "VP of Engineering" and truth.city == "New York"
        assert world.company(truth.company_id).funding_stage == "Series B"
    assert outcome.credits == 10 + outcome.records  # one run, one read per candidate
    org_balance = agg.sandbox.emulator("orbit").balance(1)
    assert outcome.credits_remaining == org_balance  # from X-Developer-API-Credits-Remaining


async def test_candidate_profiles_stream_in_before_the_run_completes(make_aggregator: Any) -> None:
    # one candidate every 30 virtual s: the run completes ~15 min (virtual) after its first candidate,
    # so a stalled client (seconds of wall time) still reads the first ones while the run is running
    agg = await orbit(make_aggregator, n_companies=2000, emulators={"orbit": {"candidate_interval_s": 30.0}})
    phases_at_hits = []
    phase = None
    async for event in agg.stream(DEMO, max_results=5, providers=("orbit",)):
        if isinstance(event, ProgressEvent) and event.provider == "orbit":
            phase = event.phase
        if isinstance(event, HitsEvent):
            phases_at_hits.append(phase)
    assert phases_at_hits and phases_at_hits[0] == "running"


async def test_a_lost_202_is_retried_with_the_same_request_id_charged_once(make_aggregator: Any) -> None:
    lost = FaultRule(provider="orbit", endpoint=START, kind="reset", first_n=1, after_handler=True)
    agg = await orbit(make_aggregator, faults=(lost,), n_companies=1000)
    report = await agg.search(DEMO, max_results=5, providers=("orbit",))

    outcome = report.outcome("orbit")
    assert outcome.status == "found" and outcome.retries >= 1
    assert stats(agg)["jobs_started"] == 1 and stats(agg)["idempotent_replays"] == 1
    assert stats(agg)["credits_charged"] == 10 + outcome.records == outcome.credits


TIGHT_STATUS = {"status_rate_per_s": 2, "status_burst": 3}
CLIENT_STATUS = {"providers": {"orbit": {"rate_limits": [
    {"name": "start", "endpoints": [START], "kind": "token_bucket", "limit": 5, "window_s": 1.0,
     "burst": 25},
    {"name": "status", "endpoints": [STATUS], "kind": "token_bucket", "limit": 2, "window_s": 1.0,
     "burst": 3},
]}}}


async def test_the_status_bucket_is_respected_while_polling_many_runs(make_aggregator: Any) -> None:
    agg = await orbit(make_aggregator, emulators={"orbit": TIGHT_STATUS}, overrides=CLIENT_STATUS,
                      n_companies=600)
    titles = ["CTO", "CEO", "VP of Sales", "VP of Marketing", "VP of Engineering", "VP of Product"]
    reports = await asyncio.gather(*(agg.search(f"{t} in New York", max_results=3, providers=("orbit",))
                                     for t in titles * 2))

    assert all(r.outcome("orbit").status in ("found", "no_result") for r in reports)
    status = stats(agg)["endpoints"][STATUS]
    assert status["calls"] > 12 and status["statuses"].get("429", 0) == 0


async def test_without_our_status_bucket_the_provider_does_rate_limit(make_aggregator: Any) -> None:
    """Control for the test above: the emulator's tight status bucket is real."""
    start_only = CLIENT_STATUS["providers"]["orbit"]["rate_limits"][:1]
    no_status = {"providers": {"orbit": {"rate_limits": start_only}}}
    agg = await orbit(make_aggregator, emulators={"orbit": TIGHT_STATUS}, overrides=no_status,
                      n_companies=600)
    titles = ["CTO", "CEO", "VP of Sales", "VP of Marketing", "VP of Engineering", "VP of Product"]
    await asyncio.gather(*(agg.search(f"{t} in New York", max_results=3, providers=("orbit",))
                           for t in titles * 2))
    assert stats(agg)["endpoints"][STATUS]["statuses"].get("429", 0) > 0


async def test_a_lookup_returns_the_person_with_a_partial_then_full_profile(make_aggregator: Any) -> None:
    agg = await orbit(make_aggregator, n_companies=1000)
    world = agg.sandbox.world
    person = next(p for p in world.people if world.visible("orbit", p.true_id)
                  and world.visible("orbit", p.company_id))
    identity = PersonIdentity(linkedin_url=f"https://uk.linkedin.com/in/{person.linkedin_slug}/")
    report = await agg.search("lookup", identity=identity, max_results=10)

    assert report.outcome("sixtyfour").status == "skipped"  # it cannot look people up
    outcome = report.outcome("orbit")
    assert outcome.status == "found" and outcome.records == 2  # the partial, then the full profile
    (record,) = report.records
    assert record.entity.full_name == person.full_name  # type: ignore[union-attr]
    assert record.entity.linkedin_url == f"https://www.linkedin.com/in/{person.linkedin_slug}"  # type: ignore[union-attr]
    assert len(max(record.hits, key=lambda h: h.retrieved_at).evidence) > len(
        min(record.hits, key=lambda h: h.retrieved_at).evidence)  # the full profile has more sections


async def test_an_unknown_identity_fails_with_the_provider_code(make_aggregator: Any) -> None:
    agg = await orbit(make_aggregator, n_companies=300)
    report = await agg.search("lookup", identity=PersonIdentity(email="nobody@nowhere.example"),
                              max_results=10, providers=("orbit",))
    outcome = report.outcome("orbit")
    assert outcome.status == "failed" and outcome.error is not None
    assert "identity_not_corroborated" in outcome.error.message


async def test_a_lost_202_whose_run_ended_before_the_retry_is_adopted_and_charged_once(make_aggregator: Any) -> None:
    lost = FaultRule(provider="orbit", endpoint=START, kind="reset", first_n=1, after_handler=True)
    agg = await orbit(make_aggregator, faults=(lost,), n_companies=1000,
                      emulators={"orbit": {"partial_s": 0.01, "full_s": 0.02}})  # ends long before any retry
    world = agg.sandbox.world
    person = next(p for p in world.people if world.visible("orbit", p.true_id)
                  and world.visible("orbit", p.company_id))
    identity = PersonIdentity(linkedin_url=f"https://www.linkedin.com/in/{person.linkedin_slug}")
    report = await agg.search("lookup", identity=identity, max_results=5, providers=("orbit",),
                              options={"orbit": {"run_shape": "partial_only"}})

    outcome = report.outcome("orbit")
    (run,) = agg.sandbox.emulator("orbit").list_runs()
    _first, retry = agg.sandbox.requests("orbit", START)
    assert retry.received_at_s >= run.created_at + run.end_s  # the replay found the run completed
    assert outcome.status == "found" and outcome.records == 1 and outcome.retries >= 1
    assert stats(agg)["jobs_started"] == 1 and stats(agg)["idempotent_replays"] == 1
    assert stats(agg)["credits_charged"] == 10 + 1 == outcome.credits
