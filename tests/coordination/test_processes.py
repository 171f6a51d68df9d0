"""Real OS processes sharing one PostgreSQL coordinator: one window, one lease pool, one killed holder.

Three worker processes (``worker.py``) hammer a sliding window of 20 requests per 2 virtual seconds
and a pool of 5 job slots, on one :class:`ScaledClock` epoch. A fourth process took 2 of the slots
and was killed with SIGKILL before the others started: its slots must come back within the lease
TTL, and at no moment may the window or the cap have been exceeded, counting the dead process's
slots as held until its TTL ran out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.clock import ScaledClock
from tests.coordination.test_contract import most_at_once, most_in_any_window
from tests.coordination.worker import LEASE_TTL_S, SLOTS, WINDOW

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
SCALE = 0.05  # one virtual second = 50 ms


def spawn(url: str, epoch: float, seed: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), url, repr(epoch), repr(SCALE), str(seed), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def test_processes_sharing_a_database_never_exceed_a_window_or_a_cap_and_a_killed_holder_leaks_nothing(
        database_url: str) -> None:
    epoch = time.time()
    clock = ScaledClock(SCALE, epoch=datetime.fromtimestamp(epoch, UTC))
    holder = spawn(database_url, epoch, 0, "hold")
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line, holder.stderr.read() if holder.stderr else "the holder printed nothing"
        held_at = json.loads(line)["held_at"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=10)  # reaps it and closes its pipes
    killed_at = clock.monotonic()
    workers = [spawn(database_url, epoch, seed, "work") for seed in (1, 2, 3)]
    results: list[dict[str, Any]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=45)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    requests = [(sent, answered) for r in results for sent, answered in r["requests"]]
    jobs = [(start, end) for r in results for start, end in r["jobs"]]
    assert len(requests) == 90 and len(jobs) == 36
    assert most_in_any_window(requests, WINDOW.window_s) <= WINDOW.limit
    dead_until = killed_at + LEASE_TTL_S / SCALE  # the latest the killed process's slots could count
    dead = [(held_at, dead_until)] * 2
    assert most_at_once(jobs + dead) <= SLOTS
    assert most_at_once(jobs) == SLOTS  # its slots came back: all 5 were in use at once afterwards
    first_job = min(start for start, _ in jobs)
    assert max(end for _, end in jobs) - first_job > LEASE_TTL_S / SCALE  # (still running after the TTL)
