"""One OS process of the multi-process coordination test (``test_processes.py``).

``python tests/coordination/worker.py URL EPOCH SCALE SEED MODE``:

- ``MODE=work``: sends requests through one sliding window (20 per 2 virtual seconds) and runs jobs
  under one lease pool (5 slots), all on a :class:`ScaledClock` anchored at ``EPOCH`` (shared by
  every process), then prints one JSON line: ``{"requests": [[sent, answered], ...], "jobs": [[start,
  end], ...]}`` in virtual seconds;
- ``MODE=hold``: takes 2 of the 5 slots, prints ``{"held_at": t}`` and waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import UTC, datetime

from aggregator.clock import ScaledClock
from aggregator.contract import RateLimitSpec
from aggregator.coordination.postgres import PostgresCoordinator

ACCOUNT = "sixtyfour-0123456789abcdef"
WINDOW = RateLimitSpec("query", 20, 2.0)
SLOTS = 5
LEASE_TTL_S = 0.3  # real seconds
REQUESTS, JOBS = 30, 12


async def work(coordinator: PostgresCoordinator, clock: ScaledClock,
               rng: random.Random) -> dict[str, list[list[float]]]:
    window = coordinator.rate_limit(ACCOUNT, [WINDOW], clock)
    pool = coordinator.lease_pool(ACCOUNT, "jobs", SLOTS, clock)
    requests: list[list[float]] = []
    jobs: list[list[float]] = []

    async def request() -> None:
        ticket = await window.acquire()
        sent = clock.monotonic()
        await clock.sleep(rng.random() * 0.3)
        requests.append([sent, clock.monotonic()])
        await window.release(ticket)

    async def job() -> None:
        async with pool.hold():
            start = clock.monotonic()
            await clock.sleep(1.0 + rng.random())
            jobs.append([start, clock.monotonic()])

    await asyncio.gather(*(request() for _ in range(REQUESTS)), *(job() for _ in range(JOBS)))
    return {"requests": requests, "jobs": jobs}


async def main(url: str, epoch: float, scale: float, seed: int, mode: str) -> None:
    clock = ScaledClock(scale, epoch=datetime.fromtimestamp(epoch, UTC))
    coordinator = PostgresCoordinator(url, lease_ttl_s=LEASE_TTL_S, connect_timeout_s=10.0)
    if mode == "hold":
        pool = coordinator.lease_pool(ACCOUNT, "jobs", SLOTS, clock)
        await pool.acquire()
        await pool.acquire()
        print(json.dumps({"held_at": clock.monotonic()}), flush=True)
        await asyncio.Event().wait()  # heartbeating until killed
    result = await work(coordinator, clock, random.Random(seed))
    await coordinator.aclose()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
