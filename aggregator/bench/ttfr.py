"""Time to first record vs time to completion, through ``Aggregator.stream``.

Extruct reads a discovery task's results while it runs and Orbit reads each candidate's profile as
soon as it is persisted, so their first records should arrive well before the job completes.
Sixtyfour's deep search delivers only once it is complete: it is run as the non-streaming
reference (its first record comes with the completion).

For each provider, one search on a fresh sandbox (documented timings, pinned Sixtyfour duration):
``first_record_virtual_s`` is when the first ``HitsEvent`` reached the stream's consumer,
``completion_virtual_s`` when the ``ReportEvent`` did, both measured from the call, in virtual
seconds of the sandbox clock, after an unmeasured warm-up search per provider (see
:mod:`aggregator.bench.fanout`). Check, for the streaming providers: the first record arrives before
completion (``first / completion < 1``); the fraction itself is reported.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from aggregator.bench.common import BenchResult, Metric, at_most, sandbox_settings
from aggregator.core import Aggregator
from aggregator.events import HitsEvent, ReportEvent
from aggregator.models import Mode
from providers.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["TtfrConfig", "run_ttfr"]

STREAMING: dict[str, Mode] = {"extruct": "company", "orbit": "people"}
REFERENCE: dict[str, Mode] = {"sixtyfour": "people"}


@dataclass(frozen=True)
class TtfrConfig:
    """What the benchmark runs (virtual seconds)."""

    time_scale: float = 0.01
    n_companies: int = 4000
    max_results: int = 50
    people_query: str = "VP of Engineering in New York"
    company_query: str = "Series B SaaS companies in New York"
    sixtyfour_duration_s: float = 90.0

    @classmethod
    def quick(cls) -> TtfrConfig:
        return cls(time_scale=0.002, n_companies=1000, max_results=10)


async def _measure(cfg: TtfrConfig, provider: str, mode: Mode) -> dict[str, Any]:
    settings = {"sixtyfour": {"duration_min_s": cfg.sixtyfour_duration_s,
                              "duration_max_s": cfg.sixtyfour_duration_s}} if provider == "sixtyfour" else {}
    config = SandboxConfig(time_scale=cfg.time_scale, n_companies=cfg.n_companies, providers=(provider,),
                           settings=settings)
    query = cfg.people_query if mode == "people" else cfg.company_query
    first: float | None = None
    completion = 0.0
    hits_events = 0
    report = None
    async with Sandbox(config) as sandbox, Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        clock = sandbox.clock
        t0 = clock.monotonic()
        async for event in agg.stream(query, mode=mode, max_results=cfg.max_results, providers=(provider,)):
            if isinstance(event, HitsEvent):
                hits_events += 1
                if first is None:
                    first = clock.monotonic() - t0
            elif isinstance(event, ReportEvent):
                completion = clock.monotonic() - t0
                report = event.report
    if report is None:
        raise RuntimeError(f"{provider}: the stream ended without a report")
    outcome = report.outcome(provider)
    return {"mode": mode, "status": outcome.status, "records": outcome.records, "hits_events": hits_events,
            "first_record_virtual_s": first, "completion_virtual_s": completion,
            "fraction": first / completion if first is not None and completion > 0 else None,
            "runner_time_to_first_result_s": outcome.time_to_first_result_s}


async def run_ttfr(cfg: TtfrConfig | None = None) -> BenchResult:
    """Measure the streaming providers and the Sixtyfour reference (default :class:`TtfrConfig`)."""
    cfg = cfg or TtfrConfig()
    started = time.perf_counter()
    chosen = {**STREAMING, **REFERENCE}
    warm_up = replace(cfg, time_scale=min(cfg.time_scale, 0.002))
    for provider, mode in chosen.items():  # the emulators' query matching, cached: not measured
        await _measure(warm_up, provider, mode)
    providers = {p: await _measure(cfg, p, mode) for p, mode in chosen.items()}
    metrics: list[Metric] = []
    for provider, doc in providers.items():
        if provider in STREAMING:
            check = at_most(f"{provider}: first record / completion", doc["fraction"], 1.0)
            check.target = "< 1"
            check.passed = doc["fraction"] is not None and doc["fraction"] < 1.0
            metrics.append(check)
        else:
            metrics.append(Metric(f"{provider} (not streaming): first record / completion", doc["fraction"], "x"))
        metrics.append(Metric(f"{provider}: first record, virtual", doc["first_record_virtual_s"], "s"))
        metrics.append(Metric(f"{provider}: completion, virtual", doc["completion_virtual_s"], "s"))
    return BenchResult(
        name="ttfr", title="Time to first record vs time to completion (Aggregator.stream)",
        metrics=metrics, wall_s=time.perf_counter() - started,
        details={"config": asdict(cfg), "providers": providers},
        notes=[f"one search per provider, max_results {cfg.max_results}, time scale {cfg.time_scale:g}"],
    )
