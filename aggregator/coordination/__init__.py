"""Shared coordination of rate limits, leases (concurrency caps, job slots) and credit budgets.

One interface (:class:`Coordinator`, in :mod:`.base`), two implementations that pass one contract
suite: :class:`InProcessCoordinator` (the default: this process only, today's exact limiters) and
:class:`PostgresCoordinator` (every process on one PostgreSQL database; needs the ``postgres`` extra,
imported only when used). :func:`coordinator_from_settings` picks one: PostgreSQL when
``[database] url`` / ``DEEPSEARCH_DATABASE_URL`` is set.

:class:`AccountBudget` is one provider account's ``[budgets.<provider>]``, reserved before each paid
call at the HTTP boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aggregator.clock import Clock
from aggregator.coordination.base import (
    DEFAULT_LEASE_TTL_S,
    JOBS_POOL,
    PAUSE_GATE,
    BudgetHold,
    BudgetScope,
    BudgetUsage,
    CircuitPolicy,
    CircuitState,
    CircuitView,
    Coordinator,
    LeasePool,
    Period,
    RateLimit,
    account_fingerprint,
    endpoint_pool,
    period_start,
)

if TYPE_CHECKING:
    from aggregator.config import Settings
    from aggregator.coordination.local import InProcessCoordinator, LocalState
    from aggregator.coordination.postgres import PostgresCoordinator

__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "JOBS_POOL",
    "PAUSE_GATE",
    "AccountBudget",
    "BudgetHold",
    "BudgetScope",
    "BudgetUsage",
    "CircuitPolicy",
    "CircuitState",
    "CircuitView",
    "Coordinator",
    "InProcessCoordinator",
    "LeasePool",
    "LocalState",
    "Period",
    "PostgresCoordinator",
    "RateLimit",
    "account_fingerprint",
    "coordinator_from_settings",
    "endpoint_pool",
    "period_start",
]


def __getattr__(name: str) -> Any:
    """The implementations load on first use: psycopg only when PostgreSQL is asked for."""
    if name in ("InProcessCoordinator", "LocalState"):
        from aggregator.coordination import local

        return getattr(local, name)
    if name == "PostgresCoordinator":
        from aggregator.coordination.postgres import PostgresCoordinator

        return PostgresCoordinator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def coordinator_from_settings(settings: Settings) -> Coordinator:
    """A :class:`PostgresCoordinator` when ``settings.database.url`` is set (``[database] url`` or
    ``DEEPSEARCH_DATABASE_URL``; pool size, connect timeout and lease TTL from ``[database]``), else a new
    :class:`InProcessCoordinator`.

    Nothing connects here: the database is reached on first use (an unreachable one raises
    :class:`~aggregator.errors.CoordinationUnavailableError` there, before any paid call).

    Raises:
        ConfigError: a database URL is set but the ``postgres`` extra (psycopg) is not installed.
    """
    if settings.database.url is None:
        from aggregator.coordination.local import InProcessCoordinator

        return InProcessCoordinator()
    from aggregator.db import require_driver

    require_driver()
    from aggregator.coordination.postgres import PostgresCoordinator

    return PostgresCoordinator(settings.database.url, pool_size=settings.database.pool_size,
                               connect_timeout_s=settings.database.connect_timeout_s,
                               lease_ttl_s=settings.database.lease_ttl_s)


@dataclass(frozen=True, slots=True)
class AccountBudget:
    """One provider account's credit budgets (``[budgets.<provider>]``; none is fine), plus the shared
    budgets of the calling context (:data:`aggregator.budget.shared_budgets`: a batch's ``--budget``),
    reserved together through ``coordinator`` before each paid call (all or none), settled at the actual
    cost, released on failure.

    Raises (from :meth:`reserve`):
        BudgetExceededError: naming the provider and the budget (the account's period and limit, or the batch's).
        CoordinationUnavailableError: the shared state cannot be reached (the call is not made).
    """

    coordinator: Coordinator
    provider: str
    scopes: tuple[BudgetScope, ...]
    clock: Clock

    @classmethod
    def of(cls, coordinator: Coordinator, provider: str, account: str, credits: float, period: Period,
           clock: Clock) -> AccountBudget:
        return cls(coordinator, provider, (BudgetScope.for_account(account, credits, period),), clock)

    def applying(self) -> tuple[BudgetScope, ...]:
        """The scopes a paid call made now reserves from: the account's and the context's shared ones."""
        from aggregator.budget import shared_budgets

        return self.scopes + shared_budgets.get()

    async def reserve(self, amount: float) -> BudgetHold | None:
        """Reserve ``amount`` in every applying scope; None when no scope applies (nothing to reserve)."""
        scopes = self.applying()
        if not scopes:
            return None
        return await self.coordinator.reserve(scopes, amount, self.clock, provider=self.provider)

    async def settle(self, hold: BudgetHold, actual: float | None = None) -> None:
        await self.coordinator.settle(hold, actual)

    async def release(self, hold: BudgetHold) -> None:
        await self.coordinator.release(hold)

    async def usage(self) -> Sequence[BudgetUsage]:
        """Each applying scope's current period."""
        return [await self.coordinator.usage(scope, self.clock) for scope in self.applying()]
