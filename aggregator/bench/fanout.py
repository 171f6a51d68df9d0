"""Fan-out: strategy ``all`` over a mode's providers vs the slowest of them alone.

No mode has three providers (people: Sixtyfour + Orbit; company: Sixtyfour + Extruct; Extruct
has no people mode and Orbit no company mode), so the benchmark runs each mode over the two
providers that support it and reports both; between them all three providers take part.

Each run (``all``, and each provider alone) gets a fresh in-process sandbox with the same seed:
the emulators then hand out the same job ids in the same order, so every provider job takes
exactly as long in the ``all`` run as alone (Sixtyfour's deep-search duration is pinned to one
value; Orbit's and Extruct's timings follow from the query and the job id). What differs is only
our side: two providers sharing one event loop, one session and one merge. Each run is repeated
``repeats`` times and the median taken, after one unmeasured warm-up run per mode: the emulators
cache their matching of a query against the world (tens of milliseconds of CPU in the event loop
we share with them; a real provider spends it on its own machines), so no measured run pays it.

Times are *virtual* seconds (the sandbox clock, ``report.elapsed_s``); our CPU time counts in them
multiplied by ``1 / time_scale``, so a small time scale is the harder test. Target: ``all`` takes
at most 1.05 times as long as the slowest provider alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from aggregator.bench.common import BenchResult, Metric, at_most, median, sandbox_settings
from aggregator.core import Aggregator
from aggregator.models import Mode
from providers.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["FanoutConfig", "run_fanout"]

RATIO_TARGET = 1.05
MODES: dict[Mode, tuple[str, str]] = {"people": ("sixtyfour", "orbit"), "company": ("sixtyfour", "extruct")}


@dataclass(frozen=True)
class FanoutConfig:
    """What the benchmark runs (virtual seconds)."""

    time_scale: float = 0.01
    n_companies: int = 4000
    repeats: int = 3
    max_results: int = 50
    people_query: str = "VP of Engineering in New York"
    company_query: str = "Series B SaaS companies in New York"
    sixtyfour_duration_s: float = 90.0  # pinned (documented 30-120 s) so runs compare exactly

    @classmethod
    def quick(cls) -> FanoutConfig:
        return cls(time_scale=0.002, n_companies=1000, repeats=1, max_results=10)


async def _elapsed(cfg: FanoutConfig, mode: Mode, providers: tuple[str, ...]) -> tuple[float, dict[str, Any]]:
    """One search on a fresh sandbox: its elapsed virtual seconds and per-provider outcomes."""
    emulators: dict[str, dict[str, Any]] = {
        "sixtyfour": {"duration_min_s": cfg.sixtyfour_duration_s, "duration_max_s": cfg.sixtyfour_duration_s}}
    config = SandboxConfig(time_scale=cfg.time_scale, n_companies=cfg.n_companies, providers=providers,
                           settings={p: emulators[p] for p in providers if p in emulators})
    query = cfg.people_query if mode == "people" else cfg.company_query
    async with Sandbox(config) as sandbox, Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        report = await agg.search(query, mode=mode, max_results=cfg.max_results, providers=providers)
    outcomes = {o.provider: {"status": o.status, "records": o.records, "elapsed_virtual_s": o.elapsed_s}
                for o in report.outcomes}
    return report.elapsed_s, outcomes


async def _mode(cfg: FanoutConfig, mode: Mode) -> dict[str, Any]:
    runs: dict[str, list[float]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    providers = MODES[mode]
    await _elapsed(replace(cfg, time_scale=min(cfg.time_scale, 0.002)), mode, providers)  # warm-up, not measured
    for _ in range(cfg.repeats):
        for label, chosen in (("all", providers), *((p, (p,)) for p in providers)):
            elapsed, outcome = await _elapsed(cfg, mode, chosen)
            runs.setdefault(label, []).append(elapsed)
            outcomes[label] = outcome
    alone = {p: median(runs[p]) for p in providers}
    slowest = max(alone, key=lambda p: alone[p])
    all_s = median(runs["all"])
    return {"providers": list(providers), "all_virtual_s": all_s, "alone_virtual_s": alone, "slowest": slowest,
            "ratio": all_s / alone[slowest], "runs_virtual_s": runs, "outcomes": outcomes}


async def run_fanout(cfg: FanoutConfig | None = None) -> BenchResult:
    """Measure both modes (default :class:`FanoutConfig`)."""
    cfg = cfg or FanoutConfig()
    started = time.perf_counter()
    modes = {mode: await _mode(cfg, mode) for mode in MODES}
    metrics: list[Metric] = []
    for mode, doc in modes.items():
        names = " + ".join(doc["providers"])
        metrics.append(at_most(f"{mode}: all ({names}) / slowest alone ({doc['slowest']})", doc["ratio"],
                               RATIO_TARGET))
        alone = ", ".join(f"{p} {v:.1f} s" for p, v in doc["alone_virtual_s"].items())
        metrics.append(Metric(f"{mode}: all, virtual", doc["all_virtual_s"], "s", reference=f"alone: {alone}"))
    return BenchResult(
        name="fanout", title="Fan-out: strategy all vs the slowest provider alone",
        metrics=metrics, wall_s=time.perf_counter() - started,
        details={"config": asdict(cfg), "modes": modes},
        notes=["no mode has three providers: people runs Sixtyfour + Orbit, company Sixtyfour + Extruct",
               f"median of {cfg.repeats} run(s) each, fresh same-seed sandbox per run, time scale {cfg.time_scale:g}"],
    )
