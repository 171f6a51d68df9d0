"""Budgets end to end: paid calls stop at the budget, as the emulators' own ledgers confirm."""

from __future__ import annotations

from typing import Any

DEMO = "VP of Engineering at Series B SaaS startups in New York"


async def test_orbit_stops_reading_profiles_at_the_budget_and_reports_partial(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=("orbit",))
    report = await agg.search(DEMO, max_results=50, budget=15, providers=("orbit",))

    outcome = report.outcome("orbit")
    assert outcome.status == "partial" and outcome.records == 5  # 10 for the run + 5 reads
    assert outcome.error is not None and outcome.error.type == "BudgetExceededError"
    charged = agg.sandbox.stats()["providers"]["orbit"]["credits_charged"]
    assert charged == outcome.credits == 15


async def test_a_budget_too_small_for_the_run_makes_no_paid_call(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=("orbit",), n_companies=600)
    report = await agg.search(DEMO, max_results=50, budget=9, providers=("orbit",))

    outcome = report.outcome("orbit")
    assert outcome.status == "failed" and outcome.error and outcome.error.type == "BudgetExceededError"
    stats = agg.sandbox.stats()["providers"]["orbit"]
    assert stats["jobs_started"] == 0 and stats["credits_charged"] == 0


async def test_extruct_asks_for_no_more_matches_than_the_budget_covers(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=("extruct",))
    report = await agg.search("vertical SaaS companies serving freight forwarding", mode="company",
                              max_results=40, budget=12, providers=("extruct",))

    (task,) = agg.sandbox.emulator("extruct").list_tasks()
    assert task.desired_num_results == 12
    assert agg.sandbox.stats()["providers"]["extruct"]["credits_charged"] <= 12
    assert report.outcome("extruct").records <= 12


async def test_orbit_reads_only_what_the_accounts_budget_still_covers(make_aggregator: Any) -> None:
    # [budgets.orbit] bounds every run of the account: the reads shrink to it as to a run's budget (the
    # whole batch of reads used to be refused, losing the records the budget could still pay for)
    agg = await make_aggregator(providers=("orbit",), overrides={"budgets": {"orbit": {"credits": 15,
                                                                                     "period": "day"}}})
    report = await agg.search(DEMO, max_results=50, providers=("orbit",))

    outcome = report.outcome("orbit")
    assert outcome.status == "partial" and outcome.records == 5  # 10 for the run + 5 reads
    assert outcome.error is not None and "15 credits per day" in outcome.error.message
    assert agg.sandbox.stats()["providers"]["orbit"]["credits_charged"] == outcome.credits == 15


async def test_extruct_asks_for_no_more_matches_than_the_accounts_budget_covers(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=("extruct",), overrides={"budgets": {"extruct": {"credits": 12,
                                                                                         "period": "day"}}})
    report = await agg.search("vertical SaaS companies serving freight forwarding", mode="company",
                              max_results=40, providers=("extruct",))

    (task,) = agg.sandbox.emulator("extruct").list_tasks()
    assert task.desired_num_results == 12
    assert agg.sandbox.stats()["providers"]["extruct"]["credits_charged"] <= 12
    assert report.outcome("extruct").records <= 12
