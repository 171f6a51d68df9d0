"""Rate-limit utilization: how close to a documented limit we run, and the 429s it costs.

Two limits, each driven by ``Aggregator.search`` against an emulator that enforces it:

- **Sixtyfour ``POST /search/query``, 200 requests per 60 s (sliding window).** One deep search
  whose result has 5,000 rows, paged with ``page_size`` 5: 1,000 sequential cursor requests, i.e.
  five windows' worth. (At the default page size of 100 the 50 pages fit inside one window and the
  limit is never reached, so there would be nothing to measure.)
- **Orbit ``POST /v2/developer/deep-search``, 5 per second, burst 25 (token bucket).** ``orbit_starts``
  concurrent people searches, each starting one run. Orbit's status and profile buckets are lifted
  on both sides (emulator and client) so that only the start bucket shapes the run.

The client's request times come from aiohttp trace hooks on the session we hand the Aggregator,
stamped on the sandbox clock (virtual seconds). 429s are the emulator's own count
(``/_sandbox/stats`` ``rate_limited``), so a 429 our client retried silently still counts.

Steady state, i.e. what "achieved rate" means:

- *Sliding window* (``limit`` L per ``window`` W). Any client may send L requests at once; after
  that the best possible pace is L requests per W, released as the oldest request leaves the
  window. So the first request of each batch of L is one window after the first of the previous
  batch, at best. We take the ``m = (n - 1) // L`` whole windows between request 0 and request
  ``m*L``: achieved rate = ``m*L / (t[m*L] - t[0])``, compared with ``L / W``. Every wait our
  limiter adds at a window boundary (response latency, a late wake-up) shows up in it.
- *Token bucket* (``rate`` r, ``burst`` b). The first b requests are free and the bucket refills
  while they are sent; from request ``2b`` on, the bucket is empty and the best pace is r per
  second. Achieved rate = ``(n - 1 - 2b) / (t[n-1] - t[2b])``, compared with r.

Targets: achieved/limit ``>= 0.95`` and zero 429s, for each limit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from aggregator.bench.common import BenchResult, Metric, RequestLog, at_least, at_most, sandbox_settings
from aggregator.core import Aggregator
from providers.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["RateLimitConfig", "run_ratelimit", "sliding_window_rate", "token_bucket_rate"]

UTILIZATION_TARGET = 0.95
LIFTED = 1000.0  # Orbit status/profile buckets (per second), on both sides
QUERY_PATH, ORBIT_START_PATH = "/search/query", "/v2/developer/deep-search"


@dataclass(frozen=True)
class RateLimitConfig:
    """What the benchmark runs; durations are virtual seconds of the sandbox clock."""

    time_scale: float = 0.05  # Sixtyfour paging: 5 windows of 60 s take 15 s of wall time
    n_companies: int = 4000
    query: str = "engineer"  # 5,000 people match in the 4,000-company world
    rows: int = 5000
    page_size: int = 5
    query_limit: int = 200  # DOC: /search/query 200 per minute per org
    query_window_s: float = 60.0
    orbit_time_scale: float = 0.2  # 5 starts per virtual second = 25 per wall second
    orbit_query: str = "VP of Engineering in New York"
    orbit_starts: int = 150
    orbit_rate_per_s: float = 5.0  # SEED: 5 per second, burst 25
    orbit_burst: int = 25

    @classmethod
    def quick(cls) -> RateLimitConfig:
        return cls(time_scale=0.005, n_companies=1000, rows=1000, page_size=20, query_limit=20,
                   orbit_time_scale=0.05, orbit_starts=40, orbit_burst=10)


def sliding_window_rate(times: list[float], limit: int) -> tuple[float | None, int]:
    """Achieved requests per second over whole windows (see the module doc) and the window count."""
    windows = (len(times) - 1) // limit
    if windows < 1:
        return None, 0
    span = times[windows * limit] - times[0]
    return (windows * limit / span if span > 0 else None), windows


def token_bucket_rate(times: list[float], burst: int) -> float | None:
    """Achieved requests per second once the burst is spent (see the module doc)."""
    first = 2 * burst
    if len(times) - 1 - first < 2:
        return None
    span = times[-1] - times[first]
    return (len(times) - 1 - first) / span if span > 0 else None


async def _sixtyfour(cfg: RateLimitConfig) -> dict[str, Any]:
    emulator = {"queue_s": 0.0, "duration_min_s": 5.0, "duration_max_s": 5.0,
                "query_rate_limit": cfg.query_limit, "query_window_s": cfg.query_window_s}
    limits = [{"name": "query", "endpoints": ["POST /search/query"], "limit": cfg.query_limit,
               "window_s": cfg.query_window_s},
              {"name": "general", "endpoints": ["*"], "limit": 500, "window_s": 60.0}]
    settings = sandbox_settings({"sixtyfour": {"page_size": cfg.page_size, "rate_limits": limits,
                                               "poll_interval_s": 5.0, "poll_max_interval_s": 5.0}})
    config = SandboxConfig(time_scale=cfg.time_scale, n_companies=cfg.n_companies, providers=("sixtyfour",),
                           settings={"sixtyfour": emulator})
    async with Sandbox(config) as sandbox:
        log = RequestLog(sandbox.clock)
        async with log.session() as session, Aggregator(settings, session=session, sandbox=sandbox) as agg:
            report = await agg.search(cfg.query, mode="people", max_results=cfg.rows, providers=("sixtyfour",))
        stats = sandbox.stats()["providers"]["sixtyfour"]
    times = log.times("POST", QUERY_PATH)
    rate, windows = sliding_window_rate(times, cfg.query_limit)
    limit_rate = cfg.query_limit / cfg.query_window_s
    outcome = report.outcome("sixtyfour")
    return {"limit": f"{cfg.query_limit} per {cfg.query_window_s:g} s", "requests": len(times),
            "records": outcome.records, "status": outcome.status, "windows_measured": windows,
            "achieved_per_min": rate * 60 if rate else None, "limit_per_min": limit_rate * 60,
            "utilization": rate / limit_rate if rate else None, "virtual_s": times[-1] - times[0] if times else 0.0,
            "rate_limited_429": int(stats["rate_limited"]), "client_retries": outcome.retries}


async def _orbit(cfg: RateLimitConfig) -> dict[str, Any]:
    emulator = {"start_rate_per_s": cfg.orbit_rate_per_s, "start_burst": cfg.orbit_burst,
                "status_rate_per_s": LIFTED, "status_burst": int(LIFTED), "profile_rate_per_s": LIFTED,
                "profile_burst": int(LIFTED), "sources_s": 1.0, "clustering_s": 1.0, "dispatch_s": 1.0,
                "candidate_interval_s": 1.0, "max_candidates": 1, "initial_credits": 10**7}
    limits = [{"name": "start", "endpoints": ["POST /v2/developer/deep-search"], "kind": "token_bucket",
               "limit": cfg.orbit_rate_per_s, "window_s": 1.0, "burst": cfg.orbit_burst},
              {"name": "status", "endpoints": ["GET /v2/developer/deep-search/{requestId}"], "kind": "token_bucket",
               "limit": LIFTED, "window_s": 1.0, "burst": int(LIFTED)},
              {"name": "profile", "endpoints": ["GET /v2/developer/profiles/{id}"], "kind": "token_bucket",
               "limit": LIFTED, "window_s": 1.0, "burst": int(LIFTED)}]
    settings = sandbox_settings({"orbit": {"rate_limits": limits}})
    config = SandboxConfig(time_scale=cfg.orbit_time_scale, n_companies=cfg.n_companies, providers=("orbit",),
                           settings={"orbit": emulator})
    async with Sandbox(config) as sandbox:
        log = RequestLog(sandbox.clock)
        async with log.session() as session, Aggregator(settings, session=session, sandbox=sandbox) as agg:
            reports = await asyncio.gather(*(
                agg.search(cfg.orbit_query, mode="people", max_results=1, providers=("orbit",))
                for _ in range(cfg.orbit_starts)))
        stats = sandbox.stats()["providers"]["orbit"]
    times = log.times("POST", ORBIT_START_PATH)
    rate = token_bucket_rate(times, cfg.orbit_burst)
    statuses = sorted({r.outcome("orbit").status for r in reports})
    return {"limit": f"{cfg.orbit_rate_per_s:g}/s burst {cfg.orbit_burst}", "requests": len(times),
            "searches": len(reports), "statuses": statuses, "achieved_per_s": rate,
            "limit_per_s": cfg.orbit_rate_per_s, "utilization": rate / cfg.orbit_rate_per_s if rate else None,
            "virtual_s": times[-1] - times[0] if times else 0.0, "rate_limited_429": int(stats["rate_limited"]),
            "client_retries": sum(r.outcome("orbit").retries for r in reports)}


async def run_ratelimit(cfg: RateLimitConfig | None = None) -> BenchResult:
    """Measure both limits (default :class:`RateLimitConfig`)."""
    cfg = cfg or RateLimitConfig()
    started = time.perf_counter()
    sixtyfour = await _sixtyfour(cfg)
    orbit = await _orbit(cfg)
    achieved = f"{sixtyfour['achieved_per_min'] or 0:.1f}/min of {sixtyfour['limit_per_min']:g}/min"
    starts = f"{orbit['achieved_per_s'] or 0:.3f}/s of {orbit['limit_per_s']:g}/s"
    metrics: list[Metric] = [
        at_least("Sixtyfour /search/query utilization", sixtyfour["utilization"], UTILIZATION_TARGET,
                 reference=achieved),
        at_most("Sixtyfour 429s", float(sixtyfour["rate_limited_429"]), 0, "429s",
                reference=f"client retries {sixtyfour['client_retries']}"),
        at_least("Orbit start utilization", orbit["utilization"], UTILIZATION_TARGET, reference=starts),
        at_most("Orbit 429s", float(orbit["rate_limited_429"]), 0, "429s",
                reference=f"client retries {orbit['client_retries']}"),
    ]
    return BenchResult(
        name="ratelimit", title="Rate-limit utilization (achieved rate / documented limit, steady state)",
        metrics=metrics, wall_s=time.perf_counter() - started,
        details={"config": asdict(cfg), "sixtyfour": sixtyfour, "orbit": orbit},
        notes=[f"Sixtyfour: {sixtyfour['requests']} pages of {cfg.page_size} over {sixtyfour['windows_measured']} "
               f"whole windows; Orbit: {orbit['requests']} starts, steady state after {2 * cfg.orbit_burst}"],
    )
