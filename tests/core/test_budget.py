"""Credit budgets: reservations before paid calls, settle/release, never an overshoot."""

from __future__ import annotations

import asyncio
import random

import pytest

from aggregator.budget import CreditBudget
from aggregator.errors import BudgetExceededError
from tests.fakes import virtual_time


def test_a_reservation_that_does_not_fit_is_refused_with_the_numbers() -> None:
    budget = CreditBudget(limit=15)
    first = budget.reserve(10, "orbit")
    with pytest.raises(BudgetExceededError) as info:
        budget.reserve(10, "orbit")
    assert (info.value.needed, info.value.remaining, info.value.provider) == (10, 5, "orbit")
    budget.settle(first)
    assert (budget.spent, budget.reserved, budget.available) == (10, 0, 5)


def test_released_reservations_are_given_back_and_settling_never_charges_more_than_reserved() -> None:
    budget = CreditBudget(limit=20)
    lost = budget.reserve(10, "orbit")
    budget.release(lost)
    kept = budget.reserve(10, "extruct")
    budget.settle(kept, actual=25)  # a provider reporting more than reserved is capped
    budget.settle(kept)  # settling twice is a no-op
    assert budget.spent == 10 and budget.by_provider == {"extruct": 10} and budget.available == 10


@virtual_time  # the calls' start times are virtual: the interleaving is the same on every run
async def test_concurrent_paid_calls_never_overshoot_together() -> None:
    budget = CreditBudget(limit=37)
    rng = random.Random(3)
    made: list[float] = []
    booked: list[float] = []  # spent + reserved after every reservation
    refused = 0

    async def paid_call(cost: float) -> None:
        nonlocal refused
        await asyncio.sleep(rng.random())  # calls start at different moments
        try:
            reservation = budget.reserve(cost, "orbit")
        except BudgetExceededError:
            refused += 1
            return
        booked.append(budget.spent + budget.reserved)
        await asyncio.sleep(rng.random())  # the call is in flight, others start meanwhile
        if rng.random() < 0.2:
            budget.release(reservation)  # failed: refunded
            return
        made.append(cost)
        budget.settle(reservation)

    await asyncio.gather(*(paid_call(rng.choice([1, 1, 1, 10])) for _ in range(200)))
    assert sum(made) == budget.spent <= 37
    assert max(booked) <= 37  # never more booked than the limit, at any moment
    assert refused > 0 and budget.spent >= 37 - 10  # the limit was binding, and nearly all of it was used


def test_balance_ledger_charges_the_reported_drop_capped_at_the_price() -> None:
    from aggregator.budget import BalanceLedger

    ledger = BalanceLedger()
    assert ledger.charge(990, 10) == 10  # the first balance seen: no evidence, the documented price
    assert ledger.charge(989, 1) == 1
    assert ledger.charge(989, 1) == 0  # unchanged: a replay or a refund
    assert ledger.charge(980, 1) == 1  # another process spent too: never billed to this run beyond the price
    assert ledger.charge(985, 1) == 1  # out of order, or a top-up: no evidence
    assert ledger.charge(None, 1) == 1  # no header
    assert ledger.balance == 980
