"""Circuit breakers under a provider outage: the soak's outage pass (issue 19, part 2).

``deepsearch bench --only breaker`` runs one schedule of searches twice on a fresh in-process sandbox
(same seed, same world): searches start every ``spacing_s`` virtual seconds, alternating people
(Sixtyfour + Orbit) and company (Sixtyfour + Extruct), strategy ``all``. Orbit fails *every* call
(503, no ``Retry-After``) from ``outage_from_s`` to ``outage_until_s`` (a time-windowed
:class:`~providers.sandbox.faults.FaultRule`), then answers again. Pass one runs with the default
``[breaker]`` settings, pass two with ``[breaker] enabled = false`` (today's behaviour: every call is
retried).

It reports, from the emulator's request log and the breaker's transitions (virtual seconds):

- when Orbit's circuit opened (after the outage began) and closed (after it ended);
- Orbit calls during the outage after the circuit opened: only probes (plus calls already in flight
  when it opened), against the calls the breaker-less pass sent in the same span: the retries saved;
- Orbit retries over the pass, both passes;
- every other provider's steps (Sixtyfour, Extruct): all ``found`` in both passes, unaffected;
- Orbit's step in the people searches during the outage: its median time (virtual s) with the breaker
  (skipped at once) and without (retried until it fails); the searches' own times (in the JSON) are
  Sixtyfour's, which takes longer either way;
- Orbit found again in the searches started after the circuit closed.

Checks: the circuit opened and closed; at most ``MAX_STRAY_CALLS`` Orbit calls after it opened
beyond the probes; every other provider's step found in both passes; Orbit found after closing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from aggregator.bench.common import BenchResult, Metric, at_least, at_most, median
from aggregator.bench.soak import _quiet_logs
from aggregator.config import load_settings
from aggregator.core import Aggregator
from aggregator.models import Mode, SearchReport
from providers.sandbox.faults import FaultRule
from providers.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["BreakerBenchConfig", "outage_rule", "run_breaker_bench", "run_outage_pass"]

FAILING = "orbit"
PROVIDERS = ("sixtyfour", "orbit", "extruct")
PEOPLE_QUERY = "VP of Engineering in New York"
COMPANY_QUERY = "Series B SaaS companies in New York"
MAX_STRAY_CALLS = 6  # Orbit calls after the circuit opened beyond the probes: those already in flight


@dataclass(frozen=True)
class BreakerBenchConfig:
    """The schedule (virtual seconds) and sizes."""

    time_scale: float = 0.01
    n_companies: int = 2000
    searches: int = 60
    spacing_s: float = 10.0
    outage_from_s: float = 150.0
    outage_until_s: float = 350.0
    max_results: int = 20
    sixtyfour_duration_s: float = 30.0
    seed: int = 7

    @classmethod
    def quick(cls) -> BreakerBenchConfig:
        return cls(time_scale=0.005, n_companies=1000, searches=24, outage_from_s=60.0, outage_until_s=160.0,
                   max_results=10)


def outage_rule(provider: str, from_s: float, until_s: float) -> FaultRule:
    """``provider`` answers every API call with 503 (no Retry-After) from ``from_s`` to ``until_s``."""
    return FaultRule(provider, "*", "http_5xx", 1.0, status=503, retry_after_s=None, active_from_s=from_s,
                     active_until_s=until_s)


async def _one(agg: Aggregator, cfg: BreakerBenchConfig, index: int, t0: float) -> tuple[int, float, SearchReport]:
    start = t0 + index * cfg.spacing_s
    await agg.clock.sleep(max(0.0, start - agg.clock.monotonic()))
    mode: Mode = "people" if index % 2 == 0 else "company"
    report = await agg.search(PEOPLE_QUERY if mode == "people" else COMPANY_QUERY, mode=mode,
                              max_results=cfg.max_results, deadline_s=1800.0)
    return index, agg.clock.monotonic() - t0, report


async def run_outage_pass(cfg: BreakerBenchConfig, *, breaker: bool) -> dict[str, Any]:
    """One pass of the schedule (see the module docstring); virtual seconds from the sandbox's start."""
    settings = load_settings(env={}, overrides={"breaker": {"enabled": breaker}}).with_target("sandbox")
    config = SandboxConfig(time_scale=cfg.time_scale, seed=cfg.seed, n_companies=cfg.n_companies, providers=PROVIDERS,
                           settings={"sixtyfour": {"duration_min_s": cfg.sixtyfour_duration_s,
                                                   "duration_max_s": cfg.sixtyfour_duration_s}})
    wall0 = time.perf_counter()
    async with Sandbox(config) as sandbox, Aggregator(settings, sandbox=sandbox) as agg:
        t0 = sandbox.clock.monotonic()
        sandbox.add_fault(outage_rule(FAILING, t0 + cfg.outage_from_s, t0 + cfg.outage_until_s))
        done = await asyncio.gather(*(_one(agg, cfg, i, t0) for i in range(cfg.searches)))
        received = [r.received_at_s - t0 for r in sandbox.requests(FAILING)]
        retries = int(getattr(getattr(agg.adapter(FAILING).client, "stats", None), "retries", 0))
        circuit = agg.providers.breaker(FAILING)
        transitions = [(round(t - t0, 3), state) for t, state in circuit.transitions] if circuit else []
        probes = circuit.probes if circuit else 0
        rejected = circuit.rejected if circuit else 0
    searches = []
    for index, ended, report in sorted(done, key=lambda d: d[0]):
        started = index * cfg.spacing_s
        searches.append({
            "index": index, "mode": report.request.mode, "started_s": started, "elapsed_s": report.elapsed_s,
            "ended_s": ended, "outcomes": {o.provider: o.status for o in report.outcomes if o.provider in PROVIDERS
                                           and not (o.status == "skipped" and o.error is None)},
            "notes": {o.provider: o.note for o in report.outcomes if o.provider == FAILING and o.note},
            "orbit_elapsed_s": next((o.elapsed_s for o in report.outcomes if o.provider == FAILING), None),
        })
    return {"breaker": breaker, "wall_s": time.perf_counter() - wall0, "orbit_calls_at_s": received,
            "orbit_retries": retries, "transitions": transitions, "probes": probes, "rejected": rejected,
            "searches": searches}


def _first(transitions: list[tuple[float, str]], state: str, after: float) -> float | None:
    return next((t for t, s in transitions if s == state and t >= after), None)


def _summary(cfg: BreakerBenchConfig, on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    opened = _first(on["transitions"], "open", cfg.outage_from_s)
    closed = _first(on["transitions"], "closed", cfg.outage_until_s)
    span_end = cfg.outage_until_s
    after_open = [t for t in on["orbit_calls_at_s"] if opened is not None and opened <= t < span_end]
    same_span_off = [t for t in off["orbit_calls_at_s"] if opened is not None and opened <= t < span_end]
    during_on = [t for t in on["orbit_calls_at_s"] if cfg.outage_from_s <= t < span_end]
    during_off = [t for t in off["orbit_calls_at_s"] if cfg.outage_from_s <= t < span_end]
    probes_in_span = sum(1 for t, s in on["transitions"] if s == "half_open" and opened is not None
                         and opened <= t < span_end)

    def others_found(doc: dict[str, Any]) -> tuple[int, int]:
        steps = [status for s in doc["searches"] for p, status in s["outcomes"].items() if p != FAILING]
        return sum(1 for status in steps if status == "found"), len(steps)

    def people_during(doc: dict[str, Any], key: str = "elapsed_s") -> list[float]:
        return [s[key] or 0.0 for s in doc["searches"] if s["mode"] == "people"
                and cfg.outage_from_s <= s["started_s"] < cfg.outage_until_s]

    recovered = [s["outcomes"].get(FAILING) for s in on["searches"]
                 if s["mode"] == "people" and closed is not None and s["started_s"] >= closed]
    found_on, steps_on = others_found(on)
    found_off, steps_off = others_found(off)
    people_on, people_off = people_during(on), people_during(off)
    orbit_on, orbit_off = people_during(on, "orbit_elapsed_s"), people_during(off, "orbit_elapsed_s")
    skipped_notes = [s["notes"][FAILING] for s in on["searches"] if s["outcomes"].get(FAILING) == "skipped"]
    return {
        "opened_s": opened, "opened_after_outage_s": None if opened is None else opened - cfg.outage_from_s,
        "closed_s": closed, "closed_after_outage_s": None if closed is None else closed - cfg.outage_until_s,
        "orbit_calls_after_open": len(after_open), "orbit_calls_same_span_without_breaker": len(same_span_off),
        "probes_during_outage": probes_in_span, "stray_calls_after_open": len(after_open) - probes_in_span,
        "orbit_calls_during_outage": {"breaker": len(during_on), "no_breaker": len(during_off)},
        "orbit_retries": {"breaker": on["orbit_retries"], "no_breaker": off["orbit_retries"]},
        "other_steps_found": {"breaker": [found_on, steps_on], "no_breaker": [found_off, steps_off]},
        "people_during_outage_median_s": {"breaker": median(people_on) if people_on else None,
                                          "no_breaker": median(people_off) if people_off else None},
        "orbit_step_during_outage_median_s": {"breaker": median(orbit_on) if orbit_on else None,
                                              "no_breaker": median(orbit_off) if orbit_off else None},
        "orbit_after_close": recovered, "orbit_skipped": len(skipped_notes),
        "example_skip_note": skipped_notes[0] if skipped_notes else None,
    }


async def run_breaker_bench(cfg: BreakerBenchConfig | None = None) -> BenchResult:
    """Both passes and the comparison (default :class:`BreakerBenchConfig`)."""
    cfg = cfg or BreakerBenchConfig()
    started = time.perf_counter()
    with _quiet_logs():  # the outage's failures are expected
        on = await run_outage_pass(cfg, breaker=True)
        off = await run_outage_pass(cfg, breaker=False)
    doc = _summary(cfg, on, off)
    found_on, steps_on = doc["other_steps_found"]["breaker"]
    found_off, steps_off = doc["other_steps_found"]["no_breaker"]
    orbit_step = doc["orbit_step_during_outage_median_s"]
    metrics = [
        Metric("circuit opened, after the outage began (virtual)", doc["opened_after_outage_s"], "s",
               "opened", doc["opened_s"] is not None),
        Metric("circuit closed, after the outage ended (virtual)", doc["closed_after_outage_s"], "s",
               "closed", doc["closed_s"] is not None),
        at_most("orbit calls after it opened, beyond the probes", doc["stray_calls_after_open"], MAX_STRAY_CALLS,
                "calls", reference=f"{doc['probes_during_outage']} probes; "
                                   f"{doc['orbit_calls_same_span_without_breaker']} calls without a breaker"),
        Metric("orbit calls during the outage", doc["orbit_calls_during_outage"]["breaker"], "calls",
               reference=f"without a breaker: {doc['orbit_calls_during_outage']['no_breaker']}"),
        Metric("orbit retries over the pass", doc["orbit_retries"]["breaker"], "retries",
               reference=f"without a breaker: {doc['orbit_retries']['no_breaker']}"),
        at_most("other providers' steps not found, both passes", steps_on + steps_off - found_on - found_off, 0,
                "steps", reference=f"found {found_on}/{steps_on} with, {found_off}/{steps_off} without a breaker"),
        Metric("orbit step of a search during the outage, median (virtual)", orbit_step["breaker"], "s",
               reference=f"without a breaker: {_fmt(orbit_step['no_breaker'])} s"),
        at_least("orbit found after the circuit closed", sum(1 for s in doc["orbit_after_close"] if s == "found"),
                 1, "searches", reference=f"of {len(doc['orbit_after_close'])} people searches after closing"),
    ]
    return BenchResult(
        name="breaker", title="Circuit breakers: a provider outage with and without the breaker",
        metrics=metrics, wall_s=time.perf_counter() - started,
        details={"config": asdict(cfg), "summary": doc, "passes": {"breaker": _brief(on), "no_breaker": _brief(off)}},
        notes=[f"{cfg.searches} searches every {cfg.spacing_s:g} virtual s (people/company alternating, strategy "
               f"all); {FAILING} answers 503 to every call from {cfg.outage_from_s:g} to {cfg.outage_until_s:g} s",
               "the default breaker settings (8 consecutive failures, cooldown 30 s) vs the breaker disabled "
               "(breaker.enabled = false)",
               f"time scale {cfg.time_scale:g}"],
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _brief(doc: dict[str, Any]) -> dict[str, Any]:
    """A pass without its per-call timestamps (kept short in the JSON)."""
    return {**{k: v for k, v in doc.items() if k != "orbit_calls_at_s"}, "orbit_calls": len(doc["orbit_calls_at_s"])}
