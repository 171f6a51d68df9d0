"""Normalization: records per second through each provider's parse + normalize vs a bare orjson parse.

Payloads are emulator output captured over HTTP before timing (the documented wire shapes, at full
size; the fixtures in ``tests/fixtures`` hold one record each): Sixtyfour ``/search/query`` pages of
100 people and of 100 companies, Extruct ``/results`` pages (up to 250 companies) and Orbit
profiles (one person each, every materialized section).

For each provider the same payload bytes go through

- ``orjson``: ``orjson.loads`` only (the floor: what any client pays to read the JSON);
- ``normalize``: ``orjson.loads``, the provider's wire model (``parse``), then its normalizer into
  :class:`~aggregator.models.Hit` (``hit_from_row`` / ``hit_from_result`` / ``hit_from_profile``),
  exactly what its adapter does per page.

Each is looped over the payloads for ``min_time_s`` CPU seconds of this thread in all, in 5 rounds
each, the two alternating round by round, with the garbage collector off; the best round of each counts
(``timeit``'s conventions). CPU time and alternation keep the ratio fair on a shared machine: other
processes slow both sides alike instead of whichever ran while they were busy. Reported: records/s of
both, microseconds per record of the normalizer and the slowdown factor, with the target
``slowdown <= 4`` for every provider and mode (parse + normalize at most 4x a bare ``orjson.loads``).
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from aggregator.bench.common import BenchResult, Metric, at_most
from aggregator.models import Hit, SearchRequest
from providers.extruct.wire import ResultsResponse, hit_from_result
from providers.extruct.wire import parse as parse_extruct
from providers.orbit.intent import intent_for
from providers.orbit.wire import ProfileResponse, hit_from_profile
from providers.orbit.wire import parse as parse_orbit
from providers.sandbox.runner import Sandbox, SandboxConfig
from providers.sixtyfour.wire import QueryResponse, hit_from_row
from providers.sixtyfour.wire import parse as parse_sixtyfour

__all__ = ["NormalizeConfig", "Payloads", "capture_payloads", "run_normalize"]

Payloads = dict[str, list[bytes]]
"""Provider label -> captured response bodies."""
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROUNDS = 5
MAX_SLOWDOWN = 4.0


@dataclass(frozen=True)
class NormalizeConfig:
    """Sizes of the captured payloads and how long each measurement runs (real seconds)."""

    n_companies: int = 4000
    min_time_s: float = 2.0  # CPU seconds per provider, both measurements together
    sixtyfour_rows: int = 1000  # 10 pages of 100
    extruct_rows: int = 250
    orbit_profiles: int = 50

    @classmethod
    def quick(cls) -> NormalizeConfig:
        return cls(n_companies=1000, min_time_s=0.05, sixtyfour_rows=200, extruct_rows=50, orbit_profiles=10)


# -- capture --------------------------------------------------------------------------------------

class _Api:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, headers: dict[str, str]) -> None:
        self.session, self.base_url, self.headers = session, base_url, headers

    async def call(self, method: str, path: str, body: Any = None) -> bytes:
        data = orjson.dumps(body) if body is not None else None
        headers = {**self.headers, "Content-Type": "application/json"}
        async with self.session.request(method, self.base_url + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status} {raw[:200]!r}")
            return raw


async def _sixtyfour_pages(api: _Api, sandbox: Sandbox, mode: str, query: str, rows: int) -> list[bytes]:
    search_id = str(uuid.uuid4())
    start = {"query": query, "mode": mode, "max_results": rows, "search_id": search_id, "output_mode": "query_only"}
    task_id = orjson.loads(await api.call("POST", "/search/start-deep-search", start))["task_id"]
    sandbox.emulator("sixtyfour").force_complete(task_id)
    body: dict[str, Any] = {"search_id": search_id, "page_size": 100, "max_results": rows}
    pages = []
    while True:
        raw = await api.call("POST", "/search/query", body)
        pages.append(raw)
        page = orjson.loads(raw)
        if not page["has_more"] or not page["next_cursor"]:
            return pages
        body = {"cursor": page["next_cursor"]}


async def _extruct_pages(api: _Api, sandbox: Sandbox, query: str, rows: int) -> list[bytes]:
    task = orjson.loads(await api.call("POST", "/v1/discovery_tasks", {"query": query, "desired_num_results": rows}))
    sandbox.emulator("extruct").force_complete(task["id"])
    return [await api.call("GET", f"/v1/discovery_tasks/{task['id']}/results?offset=0&limit={rows}")]


async def _orbit_profiles(api: _Api, sandbox: Sandbox, query: str, profiles: int) -> list[bytes]:
    request_id = str(uuid.uuid4())
    body = {"requestId": request_id, "runShape": "candidate_discovery",
            "structuredIntent": intent_for(SearchRequest(query=query, mode="people"))}
    await api.call("POST", "/v2/developer/deep-search", body)
    sandbox.emulator("orbit").force_complete(request_id)
    status = orjson.loads(await api.call("GET", f"/v2/developer/deep-search/{request_id}"))
    ids = (status.get("result") or {}).get("candidate_profile_ids") or []
    return [await api.call("GET", f"/v2/developer/profiles/{pid}") for pid in ids[:profiles]]


async def capture_payloads(cfg: NormalizeConfig) -> Payloads:
    """Run the three emulators once and keep their result bodies (see the module doc)."""
    config = SandboxConfig(time_scale=0.01, n_companies=cfg.n_companies, providers=("sixtyfour", "extruct", "orbit"),
                           settings={"orbit": {"max_candidates": cfg.orbit_profiles}})
    async with Sandbox(config) as sandbox, aiohttp.ClientSession() as session:
        def api(provider: str, header: str, prefix: str = "") -> _Api:
            return _Api(session, sandbox.base_urls[provider], {header: prefix + sandbox.api_key(provider)})

        sixtyfour = api("sixtyfour", "x-api-key")
        return {
            "sixtyfour (people)": await _sixtyfour_pages(sixtyfour, sandbox, "people", "engineer", cfg.sixtyfour_rows),
            "sixtyfour (company)": await _sixtyfour_pages(sixtyfour, sandbox, "company", "SaaS companies",
                                                          cfg.sixtyfour_rows),
            "extruct": await _extruct_pages(api("extruct", "Authorization", "Bearer "), sandbox,
                                            "SaaS companies in the United States", cfg.extruct_rows),
            "orbit": await _orbit_profiles(api("orbit", "Authorization", "Bearer "), sandbox,
                                           "VP of Engineering in New York", cfg.orbit_profiles),
        }


# -- the normalizers, as the adapters run them ----------------------------------------------------

def _sixtyfour(mode: str) -> Callable[[bytes], list[Hit]]:
    def run(raw: bytes) -> list[Hit]:
        page = parse_sixtyfour(QueryResponse, orjson.loads(raw), "POST /search/query")
        return [hit_from_row(row, mode="people" if mode == "people" else "company", rank=i, job_id="job",
                             retrieved_at=NOW) for i, row in enumerate(page.results, start=1)]
    return run


def _extruct(raw: bytes) -> list[Hit]:
    data = orjson.loads(raw)
    page = parse_extruct(ResultsResponse, data, "GET /v1/discovery_tasks/{task_id}/results")
    names = {c.key: c.name or c.key for c in page.criteria}
    return [hit_from_result(result, rank=i, criteria_names=names, retrieved_at=NOW, raw=data["results"][i - 1])
            for i, result in enumerate(page.results, start=1)]


def _orbit(raw: bytes) -> list[Hit]:
    data = orjson.loads(raw)
    profile = parse_orbit(ProfileResponse, data, "GET /v2/developer/profiles/{id}")
    return [hit_from_profile(profile.payload, rank=1, job_id="job", retrieved_at=NOW, raw=data.get("payload"))]


NORMALIZERS: dict[str, Callable[[bytes], list[Hit]]] = {
    "sixtyfour (people)": _sixtyfour("people"), "sixtyfour (company)": _sixtyfour("company"),
    "extruct": _extruct, "orbit": _orbit,
}


def _round(payloads: list[bytes], work: Callable[[bytes], object], min_cpu_s: float) -> float:
    """CPU seconds of this thread per pass of ``work`` over ``payloads``, over at least ``min_cpu_s``."""
    passes, started = 0, time.thread_time()
    while True:
        for raw in payloads:
            work(raw)
        passes += 1
        elapsed = time.thread_time() - started
        if elapsed >= min_cpu_s:
            return elapsed / passes


def _rates(payloads: list[bytes], records: int, works: list[Callable[[bytes], object]],
           min_time_s: float) -> list[float]:
    """Records per CPU second of each of ``works`` over ``payloads``: the best of 5 rounds each, the
    works alternating round by round, with the garbage collector off (as ``timeit`` does: a collection
    of the whole heap, the world included, would land on whichever round triggers it)."""
    best = [float("inf")] * len(works)
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for i, work in enumerate(works):
                best[i] = min(best[i], _round(payloads, work, min_time_s / ROUNDS / len(works)))
    finally:
        gc.enable()
    return [records / per_pass for per_pass in best]


def measure(label: str, payloads: list[bytes], min_time_s: float) -> dict[str, Any]:
    """Both rates for one provider's payloads."""
    normalize = NORMALIZERS[label]
    records = sum(len(normalize(raw)) for raw in payloads)
    bare, full = _rates(payloads, records, [orjson.loads, normalize], min_time_s)
    return {"payloads": len(payloads), "records": records, "bytes_per_record": sum(map(len, payloads)) / records,
            "orjson_records_per_s": bare, "normalize_records_per_s": full,
            "normalize_us_per_record": 1e6 / full, "slowdown": bare / full}


async def run_normalize(cfg: NormalizeConfig | None = None) -> BenchResult:
    """Capture payloads, then time every provider (default :class:`NormalizeConfig`)."""
    cfg = cfg or NormalizeConfig()
    started = time.perf_counter()
    payloads = await capture_payloads(cfg)
    providers = {label: measure(label, bodies, cfg.min_time_s) for label, bodies in payloads.items() if bodies}
    metrics: list[Metric] = []
    for label, doc in providers.items():
        metrics.append(Metric(f"{label}: parse + normalize", doc["normalize_records_per_s"], "records/s",
                              reference=f"orjson {doc['orjson_records_per_s']:,.0f}/s"))
        metrics.append(at_most(f"{label}: slowdown vs orjson", doc["slowdown"], MAX_SLOWDOWN))
    return BenchResult(
        name="normalize", title="Normalization throughput vs a bare orjson parse",
        metrics=metrics, wall_s=time.perf_counter() - started,
        details={"config": asdict(cfg), "providers": providers},
        notes=["emulator output captured over HTTP, then timed in a loop (CPU seconds of one thread, orjson and "
               "normalize alternating, best of 5 rounds each)"],
    )
