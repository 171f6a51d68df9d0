"""Local ``deepsearch worker`` processes, started and stopped by ``deepsearch batch FILE --workers N``.

:class:`LocalWorkers` starts N workers (``python -m aggregator worker``) with this process's environment
(the same database URL, provider keys and sandbox connection file), keeps the last lines each one wrote
on stderr (shown when one fails), and stops them on leaving (SIGTERM: a graceful stop, then SIGKILL after
``stop_timeout_s``). Rows are not tied to a worker: any worker on any machine may run them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aggregator.errors import AggregatorError

__all__ = ["DEFAULT_QUEUE", "DEFAULT_STALE_AFTER_S", "STALE_AFTER_ENV", "LocalWorkers", "WorkerExited"]

TAIL_LINES = 20
DEFAULT_QUEUE = "deepsearch"
"""The Procrastinate queue ``deepsearch batch`` puts rows in and ``deepsearch worker`` takes them from."""
DEFAULT_STALE_AFTER_S = 30.0
"""A worker whose heartbeat is older than this (real seconds) is taken for dead and its rows are retried."""
STALE_AFTER_ENV = "DEEPSEARCH_WORKER_STALE_AFTER_S"
"""The environment variable of ``--stale-after`` (``deepsearch worker`` and ``deepsearch batch``)."""


class WorkerExited(AggregatorError):
    """Every local worker exited before the batch finished; ``tails`` holds each one's last stderr lines."""

    def __init__(self, codes: Sequence[int | None], tails: Sequence[str]) -> None:
        self.codes, self.tails = list(codes), list(tails)
        last = next((tail for tail in reversed(self.tails) if tail), "")
        super().__init__(f"every local worker exited (exit codes {', '.join(map(str, self.codes))})"
                         + (f"; the last one said:\n{last}" if last else ""))


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    reader: asyncio.Task[None] | None = None


class LocalWorkers:
    """``count`` local worker processes, each ``python -m aggregator worker *args``.

    Use as ``async with LocalWorkers(4, ["--concurrency", "4"]) as workers: ... workers.check() ...``;
    ``env`` defaults to this process's environment.
    """

    def __init__(self, count: int, args: Sequence[str], *, env: dict[str, str] | None = None,
                 stop_timeout_s: float = 30.0) -> None:
        self.count, self.args, self.env, self.stop_timeout_s = count, list(args), env, stop_timeout_s
        self._workers: list[_Worker] = []

    async def __aenter__(self) -> Self:
        try:
            for i in range(self.count):
                await self._start(i)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _start(self, index: int) -> None:
        name = f"{os.uname().nodename}-batch{os.getpid()}-{index + 1}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aggregator", "worker", "--name", name, *self.args, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        worker = _Worker(process)
        worker.reader = asyncio.create_task(self._read(worker), name=f"worker-{index + 1}-stderr")
        self._workers.append(worker)

    @staticmethod
    async def _read(worker: _Worker) -> None:
        assert worker.process.stderr is not None
        async for line in worker.process.stderr:
            worker.tail.append(line.decode(errors="replace").rstrip())

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, in start order."""
        return [worker.process.pid for worker in self._workers]

    def alive(self) -> int:
        """How many workers are still running."""
        return sum(1 for worker in self._workers if worker.process.returncode is None)

    def check(self) -> None:
        """Raises :class:`WorkerExited` when every worker has exited (none is left to run rows here)."""
        if self._workers and not self.alive():
            raise WorkerExited([w.process.returncode for w in self._workers],
                               ["\n".join(w.tail) for w in self._workers])

    async def stop(self) -> None:
        """SIGTERM every worker (graceful), wait up to ``stop_timeout_s`` real seconds, then SIGKILL."""
        for worker in self._workers:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)
        waits = [worker.process.wait() for worker in self._workers]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.stop_timeout_s)
        except TimeoutError:
            for worker in self._workers:
                if worker.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
            await asyncio.gather(*(worker.process.wait() for worker in self._workers))
        readers = [worker.reader for worker in self._workers if worker.reader is not None]
        await asyncio.gather(*readers, return_exceptions=True)
