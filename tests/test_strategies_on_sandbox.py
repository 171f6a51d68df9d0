"""Strategies end to end on the sandbox under injected faults: timeouts, empty answers, 429 bursts."""

from __future__ import annotations

from typing import Any

from aggregator.pipelines import Policy
from providers.sandbox.faults import FaultRule

DEMO = "VP of Engineering at Series B SaaS startups in New York"
PEOPLE = ("sixtyfour", "orbit")


async def test_fallback_passes_over_a_provider_that_times_out(make_aggregator: Any) -> None:
    # Sixtyfour's deep search takes 300 virtual s; the step gets 100 s
    agg = await make_aggregator(providers=PEOPLE, n_companies=1000,
                                emulator={"duration_min_s": 300, "duration_max_s": 300})
    policy = Policy(strategy="fallback", steps=("sixtyfour", "orbit"), step_deadline_s=100)
    report = await agg.search(DEMO, max_results=20, policy=policy)

    sixtyfour, orbit = report.outcome("sixtyfour"), report.outcome("orbit")
    assert sixtyfour.error is not None and sixtyfour.error.type == "DeadlineExceededError"
    assert "passed over (timeout)" in (sixtyfour.note or "")
    assert orbit.status == "found" and "answered" in (orbit.note or "")
    assert report.answered_by == ("orbit",) and all(r.providers == ("orbit",) for r in report.records)


async def test_fallback_passes_over_a_provider_that_returns_nothing(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=PEOPLE, n_companies=600)
    report = await agg.search("Chief Astrologer in Atlantis", max_results=10,
                              policy=Policy(strategy="fallback", steps=("orbit", "sixtyfour")))
    assert report.outcome("orbit").status in ("no_result", "failed")
    assert "passed over" in (report.outcome("orbit").note or "")
    assert report.outcome("sixtyfour").status in ("no_result", "failed", "found")


async def test_the_issue_fallback_fills_up_to_min_results_from_the_next_provider(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=PEOPLE)
    report = await agg.search(DEMO, strategy="fallback", providers=("orbit", "sixtyfour"), min_results=40)

    assert "too few results" in (report.outcome("orbit").note or "")
    assert "answered" in (report.outcome("sixtyfour").note or "")
    assert len(report.records) >= 40 and report.answered_by == ("orbit", "sixtyfour")


async def test_a_race_under_429_bursts_still_ends_with_a_winner_and_counts_every_credit(
    make_aggregator: Any,
) -> None:
    bursts = (FaultRule(provider="sixtyfour", endpoint="POST /search/start-deep-search", kind="http_429",
                        first_n=3, retry_after_s=2.0),
              FaultRule(provider="orbit", endpoint="GET /v2/developer/deep-search/{requestId}", kind="http_429",
                        first_n=3, retry_after_s=1.0))
    agg = await make_aggregator(providers=PEOPLE, faults=bursts, n_companies=1500)
    report = await agg.search(DEMO, strategy="race", providers=("orbit", "sixtyfour"), min_results=5,
                              hedge_delay_s=5, max_results=20)

    (winner,) = report.answered_by
    assert report.outcome(winner).status == "found" and "race: won" in (report.outcome(winner).note or "")
    assert all(r.providers == (winner,) for r in report.records)
    orbit_charged = agg.sandbox.stats()["providers"]["orbit"]["credits_charged"]
    assert report.outcome("orbit").credits == orbit_charged  # the loser's spend is reported too, if it ran
    assert sum(o.retries for o in report.outcomes) >= 3


async def test_the_stream_merges_records_incrementally_as_hits_arrive(make_aggregator: Any) -> None:
    from aggregator.events import HitsEvent, RecordsEvent, ReportEvent

    agg = await make_aggregator(providers=PEOPLE)
    totals: list[int] = []
    merged_from: set[tuple[str, ...]] = set()
    report = None
    async for event in agg.stream(DEMO, max_results=50):
        if isinstance(event, RecordsEvent):
            totals.append(event.total)
            merged_from |= {r.providers for r in event.changed}
        elif isinstance(event, ReportEvent):
            report = event.report
        else:
            assert not isinstance(event, HitsEvent) or event.hits
    assert report is not None and totals == sorted(totals) and len(totals) > 2  # grew in steps
    assert totals[-1] == len(report.records)  # the stream's last view is the report's
    assert any(len(p) == 2 for p in merged_from)  # records from both providers merged on the fly


async def test_a_race_cancels_the_loser_whose_requests_then_stop(make_aggregator: Any) -> None:
    # Sixtyfour's deep search would outlast the run; Orbit, hedged after 5 s, wins within a minute
    agg = await make_aggregator(providers=PEOPLE, n_companies=1500,
                                emulator={"duration_min_s": 3000, "duration_max_s": 3000})
    policy = Policy(strategy="race", steps=("sixtyfour", "orbit"), hedge_delay_s=5, min_results=5)
    report = await agg.search(DEMO, max_results=20, policy=policy)
    ended_s = agg.clock.monotonic()
    await agg.clock.sleep(30)  # a loser left running would poll again within 10-15 s

    loser = report.outcome("sixtyfour")
    assert report.answered_by == ("orbit",)
    assert loser.status == "skipped" and (loser.note or "").startswith("cancelled"), loser
    assert "race: lost to orbit" in (loser.note or "")
    (task,) = agg.sandbox.emulator("sixtyfour").tasks.tasks.values()
    received = agg.sandbox.requests("sixtyfour")
    late = [r for r in received if r.received_at_s > ended_s]
    assert received and len(late) <= 1, late  # at most the poll on the wire when it was cancelled
    assert task.status_doc(agg.sandbox.emulator("sixtyfour").now())["status"] != "completed"
