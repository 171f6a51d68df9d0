"""One contract suite, two implementations: every test taking ``backend`` runs in process and on PostgreSQL.

A :class:`Backend` makes coordinator instances that share one state: for PostgreSQL, one fresh
database (each instance is what a separate process would have: its own pool, listener, heartbeat
and holder id); in process, one :class:`~aggregator.coordination.LocalState`. Time is a
:class:`~aggregator.clock.ScaledClock` at :data:`SCALE` (one virtual second = 10 ms): the database
measures real time, so both implementations run on a clock that runs with it, and assertions are
"never more than the limit" (exact) plus generous bounds on how long waits took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from aggregator.clock import ScaledClock
from aggregator.coordination import Coordinator, InProcessCoordinator, LocalState
from aggregator.coordination.postgres import PostgresCoordinator
from tests.db.backends import migrated_database
from tests.postgres import Cluster

SCALE = 0.01  # wall seconds per virtual second
LEASE_TTL_S = 0.3  # real seconds: what a test of expiry waits for (it passes it to make())


@dataclass
class Backend:
    """Makes coordinators that share one backend (a database, or one in-process state)."""

    kind: str
    url: str | None = None
    state: LocalState = field(default_factory=LocalState)
    made: list[Coordinator] = field(default_factory=list)

    def make(self, **options: Any) -> Coordinator:
        options.setdefault("lease_ttl_s", 5.0)
        coordinator: Coordinator
        if self.kind == "postgresql":
            assert self.url is not None
            options.setdefault("connect_timeout_s", 5.0)
            coordinator = PostgresCoordinator(self.url, **options)
        else:
            coordinator = InProcessCoordinator(self.state, **options)
        self.made.append(coordinator)
        return coordinator

    async def close(self) -> None:
        for coordinator in self.made:
            await coordinator.aclose()


@pytest.fixture
def database_url(postgres: Cluster) -> str:
    """A fresh database holding the current schema (``deepsearch db migrate`` applied)."""
    return migrated_database(postgres)


@pytest.fixture(params=["in-process", "postgresql"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    url = request.getfixturevalue("database_url") if request.param == "postgresql" else None
    made = Backend(request.param, url)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(SCALE)
