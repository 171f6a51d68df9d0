"""The "kill" benchmark's machinery at test size (:mod:`aggregator.bench.kill`): a batch run in one process
for reference, then by workers of which some are SIGKILLed at random instants, against a real PostgreSQL.

Its own standalone sandboxes (``deepsearch sandbox serve`` subprocesses) and ``deepsearch batch`` /
``deepsearch worker`` subprocesses, as at full size; only the sizes are small. No timing is asserted.
"""

from __future__ import annotations

import asyncio

import pytest

from aggregator.bench.kill import KillBenchConfig, run_kill_bench
from aggregator.config import DATABASE_URL_ENV
from tests.db.backends import migrated_database
from tests.postgres import Cluster

PAID = ("sixtyfour", "orbit")


@pytest.mark.timeout(120)  # two sandboxes, a reference batch and the killed one: about 25 s, more when loaded
def test_workers_killed_at_random_instants_leave_every_row_done_with_the_reference_records_and_one_start_each(
        postgres: Cluster) -> None:
    cfg = KillBenchConfig(rows=8, workers=2, kills=2, kill_window=(0.3, 0.6), stale_after_s=2.0, n_companies=300,
                          database_url=migrated_database(postgres), timeout_s=90.0)

    result = asyncio.run(run_kill_bench(cfg))
    numbers = result.details

    kills = numbers["kills"]
    assert len(kills) == 2 and all(kill["pid"] is not None for kill in kills), kills
    assert len({kill["pid"] for kill in kills}) == 2, "each kill killed a worker alive then"
    assert numbers["rows_by_status"] == {"done": 8}, "every row ended, none failed"
    assert numbers["rows_matching_reference"] == 8, "each row has the records of the one-process batch"
    assert numbers["starts_per_row"] == dict.fromkeys(PAID, 1.0)
    assert numbers["rows_started_once"] == dict.fromkeys(PAID, 8), "each row's run holds one paid job per provider"
    assert numbers["unaccounted_starts"] == dict.fromkeys(PAID, 0), "no start that no row accounts for"
    assert numbers["rate_limited"] == 0
    assert numbers["worker_exit_codes"] == [0, 0], "the workers not killed (2 with the replacements) stop cleanly"
    assert result.passed is True, [m for m in result.metrics if m.passed is False]


def test_without_a_database_url_the_benchmark_is_not_measured_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)

    result = asyncio.run(run_kill_bench(KillBenchConfig(rows=8, workers=2, kills=1)))

    assert result.passed is None and all(metric.value is None for metric in result.metrics)
    assert result.notes[0].startswith("not measured:") and DATABASE_URL_ENV in result.notes[0]


def test_quick_skips_the_benchmark() -> None:
    result = asyncio.run(run_kill_bench(KillBenchConfig.quick()))

    assert result.passed is None and "deepsearch bench --only kill" in result.notes[0]


@pytest.mark.parametrize("cfg", [KillBenchConfig(kills=4, workers=4, replace_killed=False),
                                 KillBenchConfig(kill_window=(0.8, 0.1)), KillBenchConfig(rows=0)])
def test_sizes_the_run_cannot_have_are_refused(cfg: KillBenchConfig) -> None:
    with pytest.raises(ValueError):
        cfg.check()
