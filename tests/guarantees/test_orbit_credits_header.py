"""Orbit charges are taken from ``X-Developer-API-Credits-Remaining``, not from the configured price.

Each paid Orbit response reports the account's balance after the call; :class:`BalanceLedger`
(aggregator/budget.py) charges the drop, capped at the configured price. The configured price is
what the budget reserves before the call (an upper bound); the budget then settles at the
header's charge, so the run reports what the provider billed and its budget is not used up by
credits that were never spent.

Killed mutation: ``BalanceLedger.charge`` returns the price whatever the header says.

Request sequence: ``tests/orbit/test_adapter_requests.py::
test_charges_follow_the_credits_header_and_the_budget_settles_at_them`` (a read the header shows
was not charged). Sandbox, here: the operator configured 2 credits per profile read while the
account is billed 1.
"""

from __future__ import annotations

from typing import Any

PEOPLE = "VP of Engineering at Series B SaaS startups in New York"
PROFILE = "GET /v2/developer/profiles/{id}"


async def test_on_the_sandbox_charges_and_the_budget_follow_the_credits_header(make_aggregator: Any) -> None:
    # profile_batch 1: reads one at a time, so each response's balance follows the previous one's
    agg = await make_aggregator(providers=("orbit",), n_companies=1500, overrides={
        "providers": {"orbit": {"credits_per_profile_read": 2.0, "profile_batch": 1}}})
    report = await agg.search(PEOPLE, max_results=25, budget=18, providers=("orbit",))

    outcome = report.outcome("orbit")
    emulator = agg.sandbox.emulator("orbit")
    charged = agg.sandbox.stats()["providers"]["orbit"]["credits_charged"]
    reads = agg.sandbox.requests("orbit", PROFILE)
    assert charged == 10 + len(reads)  # the emulator bills 1 per read
    assert outcome.credits == charged <= 18  # the run reports what was billed, within its budget
    assert outcome.credits_remaining == emulator.balance(1)
    # reserved at 2 and settled at 1 each, the 8 credits left after the run paid for 7 reads, not the
    # 4 the configured price alone would allow (the 8th needs 2 reserved with 1 left)
    assert outcome.records == len(reads) == 7
    assert outcome.error is not None and outcome.error.type == "BudgetExceededError"
