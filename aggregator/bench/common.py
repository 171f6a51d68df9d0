"""What every benchmark shares: result shapes, memory and request recorders, sandbox settings.

Shapes (all JSON-ready through :meth:`BenchResult.to_json`)::

    BenchResult(name="overhead", title="...", wall_s=12.3,      # real seconds the benchmark took
                metrics=[Metric(name="wall ratio @1000", value=1.07, unit="x", target="<= 1.2",
                                passed=True), ...],
                details={...benchmark-specific numbers...}, notes=["how it was measured", ...])

A :class:`Metric` with a ``target`` is a check (``passed`` true or false); without one it is a
reported number (``passed`` None). Durations are seconds: *virtual* seconds of the sandbox clock
where a name says ``virtual``, real (wall) seconds otherwise; memory is MiB (``_mb``).
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import resource
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace, TracebackType
from typing import Any

import aiohttp
import orjson
from yarl import URL

from aggregator.clock import Clock
from aggregator.config import Settings, load_settings

__all__ = [
    "BenchResult",
    "LagTicker",
    "Metric",
    "PeakRss",
    "RequestLog",
    "SentRequest",
    "at_least",
    "at_most",
    "cores",
    "cpu_s",
    "median",
    "quiet_gc",
    "rss_mb",
    "sandbox_settings",
    "vm_hwm_mb",
]

MB = 1024 * 1024


@dataclass
class Metric:
    """One measured number; ``target`` (``"<= 1.2"``) and ``passed`` when it is checked, and a
    ``reference`` to read it against (``"hand loop 0.005 s"``)."""

    name: str
    value: float | None
    unit: str
    target: str | None = None
    passed: bool | None = None
    reference: str | None = None


def at_most(name: str, value: float | None, limit: float, unit: str = "x", reference: str | None = None) -> Metric:
    """A check ``value <= limit`` (a missing value fails)."""
    return Metric(name, value, unit, f"<= {limit:g}", value is not None and value <= limit, reference)


def at_least(name: str, value: float | None, limit: float, unit: str = "x", reference: str | None = None) -> Metric:
    """A check ``value >= limit`` (a missing value fails)."""
    return Metric(name, value, unit, f">= {limit:g}", value is not None and value >= limit, reference)


@dataclass
class BenchResult:
    """The outcome of one benchmark (see the module docstring for the shape)."""

    name: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def passed(self) -> bool | None:
        """False if any check missed, True if all passed, None when nothing was checked."""
        checks = [m.passed for m in self.metrics if m.passed is not None]
        return all(checks) if checks else None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["passed"] = self.passed
        return doc


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# -- memory ---------------------------------------------------------------------------------------

def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(key.encode()):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """The process's resident set size now (``/proc/self/statm``; the peak so far without /proc)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE / MB
    except OSError:
        return vm_hwm_mb()


def vm_hwm_mb() -> float:
    """The process's peak resident set size so far (``VmHWM``, else ``ru_maxrss``)."""
    kb = _status_kb("VmHWM:")
    if kb is None:  # ru_maxrss is KiB on Linux, bytes on macOS
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb = maxrss / 1024 if maxrss > 1 << 30 else maxrss
    return kb / 1024


class PeakRss:
    """Samples the RSS from a thread every ``interval_s`` real seconds while in the ``with`` block.

    A sample costs tens of microseconds (``/proc/self/statm`` and a thread wake-up); ``cpu_s`` says
    how much CPU the sampler used in all, so that it can be left out of a CPU measurement.

    ``VmHWM`` is the peak of the whole process life; this sampler gives the peak of one block
    (``start_mb`` when it began, ``peak_mb`` the highest sample, ``end_mb`` when it ended).
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.start_mb = self.peak_mb = self.end_mb = 0.0
        self.cpu_s = 0.0  # CPU seconds the sampler thread used: subtract it from process CPU time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)

    def _sample(self) -> None:
        started = time.thread_time()
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, rss_mb())
        self.cpu_s = time.thread_time() - started

    def __enter__(self) -> PeakRss:
        self.start_mb = self.peak_mb = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.end_mb = rss_mb()
        self.peak_mb = max(self.peak_mb, self.end_mb)


class LagTicker:
    """Measures the event loop's lag while in the ``async with`` block: a task sleeps ``interval_s`` real
    seconds again and again and records how late it wakes (the time other callbacks held the loop).

    :meth:`summary` gives ``{"p50", "p99", "max"}`` in seconds and ``"ticks"``, the number of samples.
    A tick costs a timer and a task step (microseconds), the same on every side measured.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval_s)
            self.lags.append(max(0.0, loop.time() - before - self.interval_s))

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def __aenter__(self) -> LagTicker:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.lags) or [0.0]

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

        return {"p50": pct(0.50), "p99": pct(0.99), "max": ordered[-1], "ticks": float(len(self.lags))}


def quiet_gc() -> None:
    """Collect garbage so one measurement does not pay for the previous one's."""
    gc.collect()


# -- requests -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SentRequest:
    """One request as the client sent it: when (clock seconds), method and URL path."""

    at_s: float
    method: str
    path: str


class RequestLog:
    """Records every request an aiohttp session sends, stamped on ``clock`` (virtual seconds).

    ``session()`` returns a new ``aiohttp.ClientSession`` (the caller closes it) whose trace hooks
    append to :attr:`sent`; pass it to ``Aggregator(session=...)``.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[SentRequest] = []

    async def _on_start(self, session: aiohttp.ClientSession, ctx: SimpleNamespace,
                        params: aiohttp.TraceRequestStartParams) -> None:
        url: URL = params.url
        self.sent.append(SentRequest(self.clock.monotonic(), params.method, url.path))

    def session(self) -> aiohttp.ClientSession:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_start)
        return aiohttp.ClientSession(trace_configs=[trace],
                                     json_serialize=lambda obj: orjson.dumps(obj).decode())

    def times(self, method: str, path_prefix: str) -> list[float]:
        """Send times (clock seconds, ascending) of the requests ``method path_prefix...``."""
        return sorted(r.at_s for r in self.sent if r.method == method and r.path.startswith(path_prefix))


# -- settings -------------------------------------------------------------------------------------

def sandbox_settings(providers: Mapping[str, Mapping[str, Any]] | None = None,
                     run: Mapping[str, Any] | None = None, http: Mapping[str, Any] | None = None) -> Settings:
    """Settings for the sandbox, from the defaults only (no user file, no environment), with
    per-provider overrides ``{"sixtyfour": {"page_size": 10}}``, ``[run]`` and ``[http]`` overrides."""
    overrides: dict[str, Any] = {"providers": {k: dict(v) for k, v in (providers or {}).items()}}
    if run:
        overrides["run"] = dict(run)
    if http:
        overrides["http"] = dict(http)
    return load_settings(env={}, overrides=overrides).with_target("sandbox")


def cpu_s() -> float:
    """CPU seconds used by this process so far (user + system, every thread)."""
    return time.process_time()


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
