"""Fixtures of the crash-and-resume tests: the store's "disk" (in memory, SQLite) and a sandbox factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE
from tests.resume.crash import Disk, MemoryDisk, SqliteDisk

N_COMPANIES = 1500  # a small world: builds in half a second, still dozens of matches per demo query

StartSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture(params=["memory", "sqlite"])
async def disk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Disk]:
    """Where the job store keeps its state between the crashed process and the resumed one."""
    kept: Disk = MemoryDisk() if request.param == "memory" else SqliteDisk(tmp_path / "journal.sqlite")
    try:
        yield kept
    finally:
        await kept.close()


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    """``await start_sandbox("orbit", emulator={...})``: a sandbox running one provider, closed at teardown."""
    async with AsyncExitStack() as stack:

        async def start(provider: str, emulator: dict[str, Any] | None = None) -> Sandbox:
            config = SandboxConfig(time_scale=FAST_SCALE, n_companies=N_COMPANIES, providers=(provider,),
                                   settings={provider: emulator or {}})
            return await stack.enter_async_context(Sandbox(config))

        yield start
