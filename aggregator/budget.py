"""Credit budgets: every paid call reserves its cost *before* it is made.

A run with ``SearchRequest.budget`` gets one :class:`CreditBudget`, visible to all of its tasks
through a context variable (:data:`current_budget`). The HTTP boundary
(:meth:`aggregator.http.ProviderHTTPClient.request` with ``cost=``) reserves the call's cost first
— a call that would take spend past the budget is not made and raises
:class:`~aggregator.errors.BudgetExceededError` — then settles the reservation when the call
succeeds and releases it when the call fails (providers refund failed calls).

Reserving is synchronous (no ``await`` between the check and the booking), so concurrent calls in
one event loop can never overshoot together.

A run's budget is the run's own. Budgets of a whole provider *account* per period
(``[budgets.<provider>] credits = N, period = "day"``) and the shared budgets of the current context
(:data:`shared_budgets`: a batch's ``--budget``, which every row of the batch draws from) are reserved at
the same boundary, after the run's, together and atomically, through the account's
:class:`~aggregator.coordination.AccountBudget` (shared by every process on one database:
:mod:`aggregator.coordination`). Costs come from each provider's cost model
(``config/default.toml``); an upper bound is reserved where the final charge depends on results
(Extruct's per-match credits), so the budget errs on the safe side.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from aggregator.coordination.base import BudgetScope
from aggregator.errors import BudgetExceededError

__all__ = ["BalanceLedger", "CreditBudget", "Reservation", "current_budget", "shared_budgets"]


@dataclass
class Reservation:
    provider: str
    amount: float
    open: bool = True


@dataclass
class CreditBudget:
    """A run's credit limit: ``spent`` (settled) + ``reserved`` (in flight) never exceed ``limit``."""

    limit: float
    spent: float = 0.0
    reserved: float = 0.0
    by_provider: dict[str, float] = field(default_factory=dict)

    @property
    def available(self) -> float:
        """Credits that new reservations may still take."""
        return max(0.0, self.limit - self.spent - self.reserved)

    def reserve(self, amount: float, provider: str) -> Reservation:
        """Book ``amount`` for a call about to be made. Raises BudgetExceededError if it does not fit."""
        if amount > self.available + 1e-9:
            raise BudgetExceededError(needed=amount, remaining=self.available, provider=provider)
        self.reserved += amount
        return Reservation(provider, amount)

    def settle(self, reservation: Reservation, actual: float | None = None) -> None:
        """The call succeeded: charge ``actual`` (default: what was reserved, never more)."""
        if not reservation.open:
            return
        charged = reservation.amount if actual is None else min(max(actual, 0.0), reservation.amount)
        self.reserved -= reservation.amount
        self.spent += charged
        self.by_provider[reservation.provider] = self.by_provider.get(reservation.provider, 0.0) + charged
        reservation.open = False

    def release(self, reservation: Reservation) -> None:
        """The call failed (providers refund failed calls): give the reservation back."""
        if reservation.open:
            self.reserved -= reservation.amount
            reservation.open = False


class BalanceLedger:
    """Reconciles paid calls with a provider's post-charge balance (Orbit's credits header).

    Each paid response reports the account's balance after the call. The charge of a call is the
    drop from the lowest balance seen before it, capped at the call's documented price: a call the
    provider refunded or did not charge (an idempotent replay, an immediate completion) costs 0, and
    spending by others on the same account (another process) is never billed to this run beyond the
    price. A balance that rose (a top-up, or concurrent responses arriving out of order) or a missing
    header gives no evidence: the documented price is charged, as it is for the first call seen.
    """

    def __init__(self) -> None:
        self.balance: float | None = None

    def charge(self, remaining: float | None, price: float) -> float:
        """The credits one call cost, given the balance it reported (None: not reported)."""
        if remaining is None:
            return price
        previous = self.balance
        self.balance = remaining if previous is None else min(previous, remaining)
        if previous is None or remaining > previous:
            return price
        return min(previous - remaining, price)


current_budget: ContextVar[CreditBudget | None] = ContextVar("current_budget", default=None)

shared_budgets: ContextVar[tuple[BudgetScope, ...]] = ContextVar("shared_budgets", default=())
"""Budgets shared beyond one run, reserved with the account's at every paid call made in this context:
a batch's ``--budget`` (:meth:`~aggregator.coordination.BudgetScope.for_batch`), set by the batch runner
around each row's search (the run's tasks copy the context, so every provider step sees it)."""
