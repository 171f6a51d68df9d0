"""Shared test setup: quiet structured logging, and a sandbox-backed Aggregator factory.

Tests never sleep for real beyond what a time-scaled sandbox needs: documented provider durations
run on a :class:`~aggregator.clock.ScaledClock` shared by the sandbox and the client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import structlog

from aggregator.config import Settings, load_settings
from aggregator.core import Aggregator
from providers.sandbox.runner import Sandbox, SandboxConfig

# every emulator response of every test is checked against its provider's published schema
pytest_plugins = ["tests.conformance.plugin", "tests.postgres", "tests.cli_fixtures"]

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

FAST_SCALE = 0.002  # one virtual second = 2 ms: a 60 s deep search takes 0.12 s
# The run deadline of sandbox tests, in virtual seconds: 60 s of wall time at FAST_SCALE, as long as
# pytest's own timeout. The default (900 s) is under 2 wall seconds there, which a loaded machine can
# spend on one search: tests that are not about deadlines must not depend on how fast the machine is
# (tests about deadlines pass their own).
UNHURRIED_DEADLINE_S = 30_000.0


def sandbox_settings(overrides: dict[str, Any] | None = None, **sixtyfour: Any) -> Settings:
    """Settings with no API keys, targeting the sandbox, with runs unhurried (:data:`UNHURRIED_DEADLINE_S`);
    ``overrides`` is a nested settings mapping, ``sixtyfour`` keyword overrides go to ``providers.sixtyfour``."""
    layered: dict[str, Any] = dict(overrides or {})
    layered["run"] = {"deadline_s": UNHURRIED_DEADLINE_S, **layered.get("run", {})}
    if sixtyfour:
        providers = dict(layered.get("providers", {}))
        providers["sixtyfour"] = {**providers.get("sixtyfour", {}), **sixtyfour}
        layered["providers"] = providers
    return load_settings(env={}, overrides=layered or None).with_target("sandbox")


AggFactory = Callable[..., Awaitable[Aggregator]]


@pytest.fixture
async def make_aggregator() -> AsyncIterator[AggFactory]:
    """``await make_aggregator(providers=(...), emulator={...}, emulators={...}, faults=(...),
    n_companies=..., overrides={...}, **sixtyfour_settings)``.

    Starts a Sandbox running ``providers`` (default Sixtyfour only; 4000-company world, time
    scale 0.002) and an Aggregator on it; both are closed at teardown. ``emulator`` holds
    Sixtyfour emulator settings, ``emulators`` any provider's. Returns the Aggregator; its
    ``.sandbox`` is the Sandbox.
    """
    async with AsyncExitStack() as stack:

        async def factory(*, providers: tuple[str, ...] = ("sixtyfour",),
                          emulator: dict[str, Any] | None = None,
                          emulators: dict[str, dict[str, Any]] | None = None,
                          faults: tuple[Any, ...] = (), n_companies: int = 4000,
                          time_scale: float = FAST_SCALE, overrides: dict[str, Any] | None = None,
                          **sixtyfour: Any) -> Aggregator:
            per_provider = {"sixtyfour": emulator or {}, **(emulators or {})}
            config = SandboxConfig(time_scale=time_scale, n_companies=n_companies, faults=faults,
                                   providers=providers,
                                   settings={k: v for k, v in per_provider.items() if k in providers})
            sandbox = await stack.enter_async_context(Sandbox(config))
            agg = Aggregator(sandbox_settings(overrides, **sixtyfour), sandbox=sandbox)
            return await stack.enter_async_context(agg)

        yield factory
