"""``/_sandbox/stats`` reports peaks, so a test can prove a cap held whatever processes the clients ran in:
requests in flight per endpoint (counted by the shared middleware) and jobs in flight per provider
(the emulator's own count, sampled whenever a job starts)."""

from __future__ import annotations

import asyncio

import aiohttp

from providers.sandbox.faults import FaultRule
from providers.sandbox.runner import Sandbox, SandboxConfig
from providers.sandbox.stats import StatsRecorder

STATUS = "GET /search/status/{task_id}"


def test_the_stats_document_holds_peaks_of_requests_and_jobs_in_flight() -> None:
    stats = StatsRecorder("p")
    assert stats.snapshot()["peak_jobs_in_flight"] is None  # no probe: unknown, not zero
    for _ in range(3):
        stats.request_started("POST /a")
    for _ in range(3):
        stats.request_finished("POST /a")
    stats.request_started("POST /a")
    running = [2]
    stats.track_jobs(lambda: running[0])
    running[0] = 4
    stats.sample_jobs()
    running[0] = 1
    stats.sample_jobs()
    doc = stats.snapshot()
    assert doc["peak_in_flight"] == {"POST /a": 3} and doc["peak_jobs_in_flight"] == 4
    assert "POST /a" not in doc["endpoints"]  # the per-endpoint counters keep their documented shape


async def test_the_sandbox_counts_concurrent_requests_and_running_jobs() -> None:
    # a slower clock than FAST_SCALE: the three status reads (held 20 virtual s = 1 real s) must overlap, and the
    # three deep searches (about a virtual minute each = 3 real s) must all run, however loaded the machine
    slow = FaultRule("sixtyfour", endpoint=STATUS, kind="slow", rate=1.0, delay_s=20.0)
    config = SandboxConfig(time_scale=0.05, n_companies=200, providers=("sixtyfour",), faults=(slow,))
    async with Sandbox(config) as sandbox, aiohttp.ClientSession() as session:
        emulator = sandbox.emulator("sixtyfour")
        emulator.ctx.stats.track_jobs(lambda: sum(
            1 for t in emulator.tasks.tasks.values() if t.kind == "deep_search" and t.in_flight(emulator.now())))
        base, headers = sandbox.base_urls["sixtyfour"], {"x-api-key": sandbox.api_key("sixtyfour")}

        async def start(query: str) -> str:
            async with session.post(f"{base}/search/start-deep-search", headers=headers,
                                    json={"query": query, "mode": "people"}) as resp:
                assert resp.status == 200
                return str((await resp.json())["task_id"])

        tasks = [await start(q) for q in ("CTO in New York", "CEO in New York", "VP of Sales in New York")]

        async def status(task_id: str) -> None:
            async with session.get(f"{base}/search/status/{task_id}", headers=headers) as resp:
                await resp.read()

        await asyncio.gather(*(status(t) for t in tasks))  # each held 20 virtual seconds: all three at once
        doc = sandbox.stats()["providers"]["sixtyfour"]
    assert doc["peak_in_flight"][STATUS] == 3 and doc["peak_in_flight"]["POST /search/start-deep-search"] == 1
    assert doc["peak_jobs_in_flight"] == 3
