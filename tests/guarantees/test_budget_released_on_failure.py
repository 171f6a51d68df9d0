"""A paid call that fails gives its reservation back, once: the provider refunds failed calls, so the
budget must too (and a second release must not hand the credits back twice)."""

from __future__ import annotations

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.budget import CreditBudget, current_budget
from aggregator.errors import InvalidRequestError
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.harness import Harness

BASE = "https://api.sixtyfour.test"


async def test_a_failed_paid_call_releases_its_reservation(session: aiohttp.ClientSession) -> None:
    harness = Harness(session, SixtyfourAdapter, BASE, "sk-test")
    budget = CreditBudget(10)
    token = current_budget.set(budget)
    try:
        with aioresponses() as mock:
            mock.post(f"{BASE}/search/query", status=422, payload={"detail": "bad"})
            with pytest.raises(InvalidRequestError):
                await harness.client.request("POST", "/search/query", endpoint="POST /search/query",
                                             json={"q": 1}, cost=4)
            assert (budget.reserved, budget.spent, budget.available) == (0.0, 0.0, 10.0)
            mock.post(f"{BASE}/search/query", payload={"results": []})
            await harness.client.request("POST", "/search/query", endpoint="POST /search/query",
                                         json={"q": 1}, cost=4)
    finally:
        current_budget.reset(token)
    assert (budget.reserved, budget.spent, budget.available) == (0.0, 4.0, 6.0)


def test_a_reservation_is_released_once() -> None:
    budget = CreditBudget(10)
    reservation = budget.reserve(4, "orbit")
    budget.release(reservation)
    budget.release(reservation)
    assert (budget.reserved, budget.available) == (0.0, 10.0)
    budget.settle(reservation, 4)  # a closed reservation is never charged either
    assert budget.spent == 0.0
