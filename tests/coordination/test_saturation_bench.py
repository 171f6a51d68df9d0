"""The saturation benchmark's machinery (``aggregator/bench/saturation.py``) at a tiny size: 2 worker processes x
25 one-page Sixtyfour filter searches against a window of 20 queries per 60 s (client and emulator alike), on
a 0.05 time scale (a window is 3 real seconds), sharing one PostgreSQL database. Two windows' worth of demand:
the result has its shape, every search found its rows, the busiest window holds at most the limit, and not
one query was refused (Sixtyfour §4.3: the emulator's own log). How close the rate comes to the limit is the
benchmark's figure (``deepsearch bench --only saturation``), not checked here. Without a database the bench
says why it measured nothing; a worker that cannot start fails it with the worker's own error.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from aggregator.bench.saturation import SaturationBenchConfig, busiest_window, run_saturation_bench
from aggregator.config import DATABASE_URL_ENV
from tests.db.backends import migrated_database
from tests.postgres import Cluster

TINY = SaturationBenchConfig(processes=2, searches=25, concurrency=25, limit=20, time_scale=0.05)


@pytest.mark.timeout(60)
async def test_the_bench_saturates_a_tiny_window_from_two_processes_without_a_429(postgres: Cluster) -> None:
    result = await run_saturation_bench(replace(TINY, database_url=migrated_database(postgres)))
    details = result.details
    assert details["searches"] == details["found"] == details["queries"] == 50
    assert details["rate_limited_429"] == 0
    assert 0 < details["busiest_window"] <= 20
    assert details["windows_measured"] == 2 and details["utilization"] is not None
    assert details["limit"] == "20 per 60 s" and details["limit_per_min"] == 20
    metrics = {m.name: m for m in result.metrics}
    assert set(metrics) == {"utilization", "429s served", "busiest window", "windows measured"}
    assert metrics["429s served"].passed and metrics["busiest window"].passed
    assert metrics["utilization"].target == ">= 0.95" and metrics["utilization"].value == details["utilization"]
    assert result.name == "saturation" and result.wall_s > 0
    assert result.to_json()["details"]["processes"] == 2


async def test_without_a_database_it_reports_why_nothing_was_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    result = await run_saturation_bench(SaturationBenchConfig())
    assert result.passed is None and all(m.value is None for m in result.metrics)
    assert result.notes[0].startswith("not measured:") and DATABASE_URL_ENV in result.notes[0]
    skipped = await run_saturation_bench(SaturationBenchConfig.quick())
    assert skipped.passed is None and "--only saturation" in skipped.notes[0]


def test_busiest_window_counts_a_half_open_window() -> None:
    assert busiest_window([], 60.0) == 0
    assert busiest_window([0.0, 1.0, 59.9, 60.0, 61.0], 60.0) == 3  # [0, 60) and [1, 61) hold 3 each
    assert busiest_window([0.0, 0.0, 0.0], 1.0) == 3


@pytest.mark.timeout(60)
async def test_a_worker_that_cannot_start_fails_the_bench_with_its_error(postgres: Cluster) -> None:
    empty = postgres.new_database()  # not migrated: every worker refuses it at start-up
    with pytest.raises(RuntimeError, match="not ready") as failed:
        await run_saturation_bench(replace(TINY, database_url=empty))
    assert "deepsearch db migrate" in str(failed.value)
