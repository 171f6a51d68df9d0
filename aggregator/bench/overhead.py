"""Overhead: our scheduler vs a minimal hand-written aiohttp loop, same requests, same sandbox.

Both sides run ``n`` concurrent Sixtyfour deep searches (``n`` in 1, 100, 1000) in this process
against a fresh in-process sandbox each, and every search makes exactly the same requests:

1. ``POST /search/start-deep-search`` (same body: query, mode, ``max_results``, a fresh
   ``search_id``, ``output_mode=query_only``);
2. ``GET /search/status/{task_id}`` every ``poll_interval_s`` virtual seconds (our poll policy is
   pinned to one interval: no backoff, no jitter), until ``completed``;
3. ``POST /search/query`` with ``{search_id, page_size, max_results}``, then cursor-only pages
   until ``has_more`` is false.

What keeps the comparison fair:

- *Same request count.* The emulator's ``complete_after_polls`` test hook ends each deep search
  at its ``polls``-th status read instead of at a clock time, so a side that falls behind under
  load cannot save polls (or pay extra ones); the run checks that both sides sent exactly the same
  number of requests per search (``requests_per_search``, from the emulator's ``/_sandbox/stats``).
- *Same limits, lifted on both sides.* The emulator's 5-concurrent-search cap and 200/min and
  500/min limits are raised to ``1e6``/``1e9``; our client gets the same numbers
  (``max_concurrent_jobs``, ``rate_limits``), so its limiter code still runs on every request but
  never waits, and the hand loop has none.
- *Same HTTP stack.* One ``aiohttp.ClientSession`` per side with aiohttp's default connector
  (100 connections), orjson on both sides, the same sandbox clock for the poll sleeps.
- *Same emulator work.* The sandbox (world, emulator, its CPU and memory) is in this process for
  both sides; it is started before the clock starts.

Our side does more per search, by design: it normalizes every row into a ``Hit``, journals it (in
memory), emits events and resolves entities into ``MergedRecord``s; the hand loop only keeps the
parsed JSON rows. That work is included in our numbers (it is what the library is for) and the
normalization benchmark measures it apart.

Time scale. The sandbox compresses provider time by ``time_scale`` but not our CPU time, so the
wall ratio depends on it: at a small scale it tends to the ratio of CPU per search (our client
normalizes and merges, the hand loop does not), at 1.0 it is what a user waits for. The default is
1.0, documented timings in real time (a 60 s deep search, 10 s polls: about a minute per side and
level); ``--time-scale`` trades that realism for speed. CPU per search does not depend on it.

Reported per concurrency: wall seconds of each side (all searches started together, the last one
finished), their ratio (target ``<= 1.2``), CPU seconds per search of each side
(``time.process_time``, less the memory sampler's own thread; the emulator's CPU is in both), the
resident memory when the run starts (``baseline_rss_mb``: interpreter, world, emulator and whatever
heap earlier runs left) and the peak during it (sampled every 20 ms; target ``<= 300`` MiB for ours
at the highest concurrency). Ours runs first at each level, so its peak never profits from memory
the hand loop freed; the hand loop's memory is not comparable for the same reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import aiohttp
import orjson

from aggregator.bench.common import (
    BenchResult,
    Metric,
    PeakRss,
    at_most,
    cpu_s,
    quiet_gc,
    rss_mb,
    sandbox_settings,
)
from aggregator.clock import Clock
from aggregator.core import Aggregator
from providers.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["OverheadConfig", "SideRun", "run_overhead"]

RATIO_TARGET = 1.2
RSS_TARGET_MB = 300.0
LIFTED = 10**9  # requests per window, on both sides
LIFTED_JOBS = 10**6  # concurrent deep searches, on both sides


@dataclass(frozen=True)
class OverheadConfig:
    """What the overhead benchmark runs (durations in virtual seconds of the sandbox clock).

    Each search: 1 start, ``polls`` status reads ``poll_interval_s`` apart, then
    ``max_results / page_size`` result pages.
    """

    concurrency: tuple[int, ...] = (1, 100, 1000)
    time_scale: float = 1.0  # real time: provider time as documented (see the module doc)
    n_companies: int = 1000
    query: str = "VP of Engineering in New York"
    max_results: int = 20
    page_size: int = 10
    poll_interval_s: float = 10.0  # Sixtyfour's documented 10-15 s cadence, pinned to 10 s
    polls: int = 6  # a 60 s deep search polled every 10 s

    @classmethod
    def quick(cls, concurrency: tuple[int, ...] = (1, 20)) -> OverheadConfig:
        return cls(concurrency=concurrency, time_scale=0.002, n_companies=300, polls=2)


@dataclass
class SideRun:
    """One side (``ours`` or ``hand``) at one concurrency. Seconds are real; memory MiB."""

    side: str
    searches: int
    wall_s: float
    cpu_s: float
    records: int
    requests: int
    baseline_rss_mb: float
    peak_rss_mb: float

    @property
    def cpu_s_per_search(self) -> float:
        return self.cpu_s / self.searches

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_s_per_search": self.cpu_s_per_search,
                "records_per_search": self.records / self.searches,
                "requests_per_search": self.requests / self.searches}


def _emulator_settings(cfg: OverheadConfig) -> dict[str, Any]:
    return {"queue_s": 0.0, "duration_min_s": 1e6, "duration_max_s": 1e6, "complete_after_polls": cfg.polls,
            "max_concurrent_searches": LIFTED_JOBS, "query_rate_limit": LIFTED, "general_rate_limit": LIFTED}


def _client_settings(cfg: OverheadConfig) -> dict[str, Any]:
    return {"poll_interval_s": cfg.poll_interval_s, "poll_max_interval_s": cfg.poll_interval_s,
            "page_size": cfg.page_size, "max_concurrent_jobs": LIFTED_JOBS,
            "rate_limits": [{"name": "query", "endpoints": ["POST /search/query"], "limit": LIFTED, "window_s": 60.0},
                            {"name": "general", "endpoints": ["*"], "limit": LIFTED, "window_s": 60.0}]}


# -- the hand-written loop ------------------------------------------------------------------------

async def _call(session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str],
                body: dict[str, Any] | None = None) -> Any:
    data = orjson.dumps(body) if body is not None else None
    async with session.request(method, url, data=data, headers=headers) as resp:
        raw = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {url}: HTTP {resp.status} {raw[:200]!r}")
    return orjson.loads(raw)


async def hand_search(session: aiohttp.ClientSession, base_url: str, api_key: str, clock: Clock,
                      cfg: OverheadConfig) -> list[dict[str, Any]]:
    """One deep search, start -> poll -> page, written directly on aiohttp; returns the rows."""
    headers = {"x-api-key": api_key, "Accept": "application/json", "Content-Type": "application/json"}
    start = {"query": cfg.query, "mode": "people", "max_results": cfg.max_results,
             "search_id": str(uuid.uuid4()), "output_mode": "query_only"}
    task_id = (await _call(session, "POST", base_url + "/search/start-deep-search", headers, start))["task_id"]
    while True:
        await clock.sleep(cfg.poll_interval_s)
        status = await _call(session, "GET", f"{base_url}/search/status/{task_id}", headers)
        if status["status"] == "completed":
            break
        if status["status"] not in ("queued", "pending", "running"):
            raise RuntimeError(f"deep search ended {status['status']}")
    body: dict[str, Any] = {"search_id": status["search_id"], "page_size": cfg.page_size,
                            "max_results": cfg.max_results}
    rows: list[dict[str, Any]] = []
    while True:
        page = await _call(session, "POST", base_url + "/search/query", headers, body)
        rows.extend(page["results"])
        if not page["has_more"] or not page["next_cursor"]:
            return rows
        body = {"cursor": page["next_cursor"]}


# -- one side at one concurrency ------------------------------------------------------------------

def _requests(sandbox: Sandbox) -> int:
    endpoints = sandbox.stats()["providers"]["sixtyfour"]["endpoints"]
    return sum(int(ep["calls"]) for ep in endpoints.values())


async def _measure(side: str, n: int, sandbox: Sandbox, one: Callable[[], Awaitable[int]]) -> SideRun:
    quiet_gc()
    sent_before = _requests(sandbox)
    with PeakRss() as rss:
        wall0, cpu0 = time.perf_counter(), cpu_s()
        records = await asyncio.gather(*(one() for _ in range(n)))
        wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    cpu -= rss.cpu_s  # the memory sampler's thread is not either side's work
    return SideRun(side, n, wall, cpu, sum(records), _requests(sandbox) - sent_before, rss.start_mb, rss.peak_mb)


def _sandbox(cfg: OverheadConfig) -> Sandbox:
    return Sandbox(SandboxConfig(time_scale=cfg.time_scale, n_companies=cfg.n_companies, providers=("sixtyfour",),
                                 settings={"sixtyfour": _emulator_settings(cfg)}))


async def run_ours(cfg: OverheadConfig, n: int) -> SideRun:
    """``n`` concurrent ``Aggregator.search`` calls (Sixtyfour only) on a fresh sandbox."""
    settings = sandbox_settings({"sixtyfour": _client_settings(cfg)}, run={"deadline_s": 86_400.0})
    async with _sandbox(cfg) as sandbox, Aggregator(settings, sandbox=sandbox) as agg:

        async def one() -> int:
            report = await agg.search(cfg.query, mode="people", max_results=cfg.max_results,
                                      providers=("sixtyfour",))
            outcome = report.outcome("sixtyfour")
            if outcome.status != "found":
                raise RuntimeError(f"our search ended {outcome.status}: {outcome.error}")
            return outcome.records

        return await _measure("ours", n, sandbox, one)


async def run_hand(cfg: OverheadConfig, n: int) -> SideRun:
    """``n`` concurrent :func:`hand_search` loops on a fresh sandbox."""
    async with _sandbox(cfg) as sandbox, aiohttp.ClientSession() as session:
        base, key = sandbox.base_urls["sixtyfour"], sandbox.api_key("sixtyfour")

        async def one() -> int:
            return len(await hand_search(session, base, key, sandbox.clock, cfg))

        return await _measure("hand", n, sandbox, one)


# -- the benchmark --------------------------------------------------------------------------------

def _level(n: int, ours: SideRun, hand: SideRun) -> tuple[dict[str, Any], list[Metric]]:
    """One concurrency level's details and metrics."""
    ratio = ours.wall_s / hand.wall_s
    same = ours.requests == hand.requests and ours.records == hand.records
    doc = {"concurrency": n, "wall_ratio": ratio, "same_requests_and_records": same,
           "cpu_s_per_search_overhead": ours.cpu_s_per_search - hand.cpu_s_per_search,
           "ours": ours.to_json(), "hand": hand.to_json()}
    metrics = [at_most(f"wall ratio @{n}", ratio, RATIO_TARGET),
               Metric(f"CPU s/search @{n}", ours.cpu_s_per_search, "s",
                      reference=f"hand loop {hand.cpu_s_per_search:.4f} s, "
                                f"ratio {ours.cpu_s_per_search / hand.cpu_s_per_search:.2f}")]
    if not same:
        counts = f"requests/records: ours {ours.requests}/{ours.records}, hand {hand.requests}/{hand.records}"
        metrics.append(Metric(f"same requests and records @{n}", 0.0, "bool", "== 1", False, reference=counts))
    return doc, metrics


async def run_overhead(cfg: OverheadConfig | None = None) -> BenchResult:
    """Run both sides at every concurrency of ``cfg`` (default :class:`OverheadConfig`)."""
    cfg = cfg or OverheadConfig()
    started = time.perf_counter()
    before_world_mb = rss_mb()  # (the world is built once per process, by the first sandbox)
    warm_up = replace(cfg, time_scale=min(cfg.time_scale, 0.002), polls=1)
    await run_ours(warm_up, 1)  # imports, lazily built adapters and caches: paid before measuring
    await run_hand(warm_up, 1)
    levels: list[dict[str, Any]] = []
    metrics: list[Metric] = []
    for n in cfg.concurrency:
        ours = await run_ours(cfg, n)
        doc, checks = _level(n, ours, await run_hand(cfg, n))
        levels.append(doc)
        metrics += checks
    top = levels[-1]["ours"]
    metrics.append(at_most(f"peak RSS @{cfg.concurrency[-1]} (ours)", top["peak_rss_mb"], RSS_TARGET_MB, "MiB",
                           reference=f"+{top['peak_rss_mb'] - top['baseline_rss_mb']:.0f} MiB over the run's start"))
    metrics.append(Metric("RSS at the start of that run", top["baseline_rss_mb"], "MiB",
                          reference=f"world, emulator, earlier runs' heap; {before_world_mb:.0f} MiB before the world"))
    return BenchResult(
        name="overhead", title="Scheduler overhead vs a hand-written aiohttp loop (Sixtyfour)",
        metrics=metrics, wall_s=time.perf_counter() - started,
        details={"config": asdict(cfg), "levels": levels, "rss_before_world_mb": before_world_mb},
        notes=[f"each search: 1 start, {cfg.polls} polls every {cfg.poll_interval_s:g} virtual s, "
               f"{-(-cfg.max_results // cfg.page_size)} pages of {cfg.page_size}; time scale {cfg.time_scale:g}",
               "CPU includes the in-process emulator on both sides; memory includes the world and emulator"],
    )
