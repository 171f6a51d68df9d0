"""The outage pass (``deepsearch bench --only breaker``, quick sizes): the circuit opens during the outage,
only probes reach the failing provider after that, the other providers are unaffected, and it closes after."""

from __future__ import annotations

from dataclasses import replace

from aggregator.bench.breaker import BreakerBenchConfig, run_breaker_bench


async def test_the_quick_outage_pass_opens_and_closes_the_circuit_and_saves_retries() -> None:
    cfg = replace(BreakerBenchConfig.quick(), time_scale=0.01)  # a loaded machine's CPU costs less virtual time
    result = await run_breaker_bench(cfg)
    summary = result.details["summary"]
    print(summary)  # shown when an assertion fails
    assert result.passed, [m for m in result.metrics if m.passed is False]
    assert cfg.outage_from_s <= summary["opened_s"] < cfg.outage_until_s
    assert summary["closed_s"] >= cfg.outage_until_s
    calls = summary["orbit_calls_during_outage"]
    assert calls["breaker"] * 2 < calls["no_breaker"]  # retries saved
    assert summary["orbit_retries"]["breaker"] < summary["orbit_retries"]["no_breaker"]
    note = summary["example_skip_note"]  # open, or half-open while another search's call probes
    assert summary["orbit_skipped"] >= 1 and note.startswith(("circuit open until ", "circuit half-open ("))
    assert "found" in summary["orbit_after_close"]
