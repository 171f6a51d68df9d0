"""CLI start-up: how long ``deepsearch --help`` takes, and what ``import aggregator`` loads.

Runs ``python -m aggregator --help`` (the ``deepsearch`` entry point's code path) ``runs`` times
in fresh interpreters and reports the median wall time in real seconds (target <= 0.3 s: nothing
of the sandbox, the benchmarks, the soak, Faker, aiohttp or a provider is imported until a
command needs it; see :mod:`aggregator.cli`). Also counts the modules a bare ``import aggregator``
loads, and checks that none is a provider, sandbox or Faker module.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass

from aggregator.bench.common import BenchResult, Metric, at_most, median

__all__ = ["HEAVY_PREFIXES", "StartupConfig", "loaded_modules", "run_startup"]

HEAVY_PREFIXES = ("providers", "faker", "aiohttp", "aggregator.bench", "psycopg", "procrastinate")
"""Module prefixes that ``import aggregator`` and ``deepsearch --help`` must not load."""

_PROBE = "import sys, {module}; print('\\n'.join(sorted(sys.modules)))"


@dataclass(frozen=True)
class StartupConfig:
    """``runs`` fresh interpreters per measurement (the median is reported)."""

    runs: int = 5

    @classmethod
    def quick(cls) -> StartupConfig:
        return cls(runs=3)


def loaded_modules(module: str) -> list[str]:
    """Every module a fresh interpreter has loaded after ``import <module>`` (sorted)."""
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def _help_wall_s() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aggregator", "--help"], check=True, capture_output=True)
    return time.perf_counter() - started


async def run_startup(cfg: StartupConfig) -> BenchResult:
    """Median wall seconds of ``deepsearch --help`` and the modules ``import aggregator`` loads."""
    started = time.perf_counter()
    walls = [await asyncio.to_thread(_help_wall_s) for _ in range(cfg.runs)]
    modules = await asyncio.to_thread(loaded_modules, "aggregator.cli")
    heavy = sorted({m for m in modules if m.startswith(HEAVY_PREFIXES)})
    return BenchResult(
        name="startup", title="CLI start-up (deepsearch --help)",
        metrics=[at_most("deepsearch --help, median", median(walls), 0.3, "s"),
                 Metric("modules loaded by import aggregator.cli", float(len(modules)), "modules"),
                 at_most("heavy modules loaded (providers, sandbox, Faker, aiohttp, bench)",
                         float(len(heavy)), 0, "modules")],
        details={"help_wall_s": [round(w, 4) for w in walls], "heavy_modules": heavy},
        notes=[f"{cfg.runs} fresh interpreters running `python -m aggregator --help`; real seconds"],
        wall_s=time.perf_counter() - started,
    )
