"""Workers SIGKILLed at random instants (issue 16, item 5, the long proof): one batch of people searches run by
4 ``deepsearch worker`` processes against ONE standalone sandbox, while at K random instants one running
worker is SIGKILLed; every row must still end, with the records of the same batch run in one process, and
each provider must have been paid exactly one start per row.

::

    DEEPSEARCH_DATABASE_URL=postgresql://... deepsearch db migrate
    DEEPSEARCH_DATABASE_URL=postgresql://... deepsearch bench --only kill        # about 3 minutes
    python -c "from aggregator.bench.kill import run; print(run())"             # the numbers as a dict

How: the reference is ``deepsearch batch FILE --concurrency 16`` without a database (one process, SQLite
journal) on a fresh ``deepsearch sandbox serve --time-scale 0.02`` subprocess (a 1,000-company world), its
wall time the run's *expected duration*. Then, on another fresh sandbox (the same world; its stats count
that run alone), the same rows as a new batch: ``deepsearch batch FILE --stale-after 5 --out OUT`` records
and enqueues them and waits (it also retries the rows of dead workers), while this process starts the 4
``deepsearch worker --concurrency 4 --stale-after 5`` itself, so that it can kill them one by one.
``random.Random(seed)`` draws K instants spread over 10 %..80 % of the expected duration (one uniformly in
each of K equal slices; real seconds after the batch command started) and, at each, one of the workers
that are alive and ready then (connected, taking rows; an instant before any row runs waits until one
does): it gets SIGKILL (no graceful stop: its heartbeat just stops; its rows in progress are retried by
another worker once it is ``stale_after_s`` stale, and resume from the shared journal). A replacement
worker is started at once after each kill, so that 4 keep running: the run then measures recovery, not a
shrinking pool (``replace_killed=False`` lets the pool shrink; then ``kills < workers``).

Checked, from the sandbox's ``/_sandbox/stats`` and the database:

- every row ended: rows by status (target: all ``done``);
- rows whose merged records (ids and providers) equal the reference's (target: all);
- paid starts per row for Sixtyfour and Orbit (target exactly 1.0): the sandbox's ``jobs_started`` over the
  rows, and row by row: rows whose journaled run holds exactly one submitted job of the provider, a job no
  other row holds; with the sandbox's total equal to the number of rows, that is exactly one paid start per
  row (a second start of a row would be a start no row's journal accounts for: ``unaccounted_starts``,
  target 0);
- 429s served by any emulator (target 0) and Sixtyfour's peak deep searches in flight (target <= 5);
- wall time (real seconds, enqueue to the last row, workers' start-up and stale waits included), and each
  kill: its instant (real seconds after the start), the killed worker's pid, rows running then.

It takes the reference's time (about 70 s at full size on 2 cores) plus the killed run's (about 110 s: the
rows of each dead worker wait ``stale_after_s`` and a supervisor round): about 3 minutes at full size
(200 rows, K=5).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.bench.batch import (
    PAID,
    StandaloneSandbox,
    bench_database_url,
    measure_on_workers,
    read_records,
    run_batch_command,
    standalone_sandbox,
    write_rows,
)
from aggregator.bench.common import BenchResult, Metric, at_least, at_most
from aggregator.config import DATABASE_URL_ENV

__all__ = ["KillBenchConfig", "run", "run_kill_bench"]

POLL_S = 0.05  # real seconds between two looks at the processes


@dataclass(frozen=True)
class KillBenchConfig:
    """``rows`` people searches run by ``workers`` workers of ``concurrency`` rows each, ``kills`` of them
    SIGKILLed at instants drawn by ``random.Random(seed)`` over ``kill_window`` (fractions of the expected
    duration: ``expected_wall_s`` real seconds, default the reference's wall time; one instant uniformly in
    each of ``kills`` equal slices of the window); ``replace_killed``: start a new worker after each kill;
    ``stale_after_s``: the workers' and the batch command's ``--stale-after`` (real seconds); the sandbox's
    ``time_scale`` and ``n_companies``; ``database_url`` (default ``$DEEPSEARCH_DATABASE_URL``, migrated);
    ``timeout_s``: real seconds the killed run may take at most; ``skip``: report nothing (``--quick``: this
    benchmark takes minutes)."""

    rows: int = 200
    workers: int = 4
    concurrency: int = 4
    kills: int = 5
    seed: int = 16
    kill_window: tuple[float, float] = (0.1, 0.8)
    expected_wall_s: float | None = None
    replace_killed: bool = True
    stale_after_s: float = 5.0
    time_scale: float = 0.02
    n_companies: int = 1000
    database_url: str | None = None
    timeout_s: float = 1800.0
    skip: bool = False

    @classmethod
    def quick(cls) -> KillBenchConfig:
        return cls(rows=8, workers=2, kills=1, skip=True)

    def check(self) -> None:
        """Raises ValueError for sizes the run cannot have."""
        low, high = self.kill_window
        if self.rows < 1 or self.workers < 1 or self.concurrency < 1 or self.kills < 0:
            raise ValueError("rows, workers and concurrency must be at least 1, kills at least 0")
        if not 0 <= low <= high:
            raise ValueError(f"kill_window must be 0 <= low <= high, got {self.kill_window}")
        if not self.replace_killed and self.kills >= self.workers:
            raise ValueError("without replacements, kills must leave a worker: kills < workers")


def run(cfg: KillBenchConfig | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns::

        {"rows", "workers", "concurrency", "seed", "stale_after_s", "replace_killed",
         "reference": {"wall_s"}, "expected_wall_s",
         "kills": [{"at_s": real s after the start, "planned_at_s", "pid": int | None,
                    "worker": int | None (1-based, in start order), "rows_running": int}],
         "wall_s", "batch_id", "rows_by_status": {"done": int, ...}, "rows_matching_reference": int,
         "rate_limited": 429s, "starts_per_row": {provider: float}, "rows_started_once": {provider: int},
         "unaccounted_starts": {provider: int}, "peak_jobs_in_flight": {provider: int | None},
         "jobs_retried": int, "worker_exit_codes": [int | None]}

    ``pid`` is None for an instant after the batch had finished (nothing was killed); ``at_s`` is the
    kill's instant, ``planned_at_s`` the drawn one (a kill waits for a row to run and a worker to be
    ready); ``jobs_retried``: row jobs that ran more than once (a dead worker's, put back in the queue:
    Procrastinate counts an attempt per run); ``worker_exit_codes``: each worker that was not killed, after
    the final SIGTERM (0: a graceful stop). Seconds are real seconds.

    Raises:
        ConfigError: no database URL (``database_url`` or ``$DEEPSEARCH_DATABASE_URL``).
        ValueError: ``cfg`` out of range (:meth:`KillBenchConfig.check`).
        RuntimeError: the sandbox did not start, a command failed (``deepsearch batch`` is failed only by an
            exit code other than 0 and 3, rows failed: those are counted), every worker died, or the run took
            longer than ``timeout_s`` (the end of the logs).
    """
    cfg = cfg or KillBenchConfig()
    cfg.check()
    url = bench_database_url(cfg.database_url, "kill")
    with tempfile.TemporaryDirectory(prefix="deepsearch-bench-kill-") as tmp:
        folder = Path(tmp)
        rows = write_rows(folder / "reference.jsonl", cfg.rows, 1000)
        with standalone_sandbox(folder / "reference", time_scale=cfg.time_scale,
                                n_companies=cfg.n_companies) as sandbox:
            reference = run_batch_command(sandbox, [str(rows), "--concurrency", str(cfg.concurrency * cfg.workers)],
                                          sandbox.env, folder / "reference-out.jsonl")
        expected_s = cfg.expected_wall_s or reference["wall_s"]
        with standalone_sandbox(folder / "killed", time_scale=cfg.time_scale,
                                n_companies=cfg.n_companies) as sandbox:
            killed = _KilledRun(sandbox, folder / "killed", cfg, url, expected_s).run()
    records = killed.pop("records")
    matching = sum(1 for row, keys in records.items() if reference["records"].get(row) == keys)
    return {"rows": cfg.rows, "workers": cfg.workers, "concurrency": cfg.concurrency, "seed": cfg.seed,
            "stale_after_s": cfg.stale_after_s, "replace_killed": cfg.replace_killed,
            "reference": {"wall_s": reference["wall_s"]}, "expected_wall_s": expected_s, **killed,
            "rows_matching_reference": matching}


class _KilledRun:
    """The batch on workers, some SIGKILLed: the processes, the kills, then what the sandbox and database say."""

    def __init__(self, sandbox: StandaloneSandbox, folder: Path, cfg: KillBenchConfig, url: str,
                 expected_s: float) -> None:
        self.sandbox, self.folder, self.cfg, self.url, self.expected_s = sandbox, folder, cfg, url, expected_s
        self.env = sandbox.env | {DATABASE_URL_ENV: url}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()
        self.rows = write_rows(folder / "rows.jsonl", cfg.rows, 1000)
        self.out = folder / "out.jsonl"

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as stderr:
            return subprocess.Popen([sys.executable, "-m", "aggregator", *args], env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)

    def _start_worker(self) -> None:
        n = len(self.workers) + 1
        self.workers.append(self._spawn(["worker", "--concurrency", str(self.cfg.concurrency), "--stale-after",
                                         f"{self.cfg.stale_after_s:g}", "--shutdown-timeout", "0", "--name",
                                         f"bench-kill-{n}"], self.folder / f"worker-{n}.log"))

    def run(self) -> dict[str, Any]:
        before = self.sandbox.stats()
        rng = random.Random(self.cfg.seed)
        low, high = self.cfg.kill_window
        step = (high - low) / max(self.cfg.kills, 1)  # one instant in each of K equal slices of the window
        planned = [round(rng.uniform(low + i * step, low + (i + 1) * step) * self.expected_s, 2)
                   for i in range(self.cfg.kills)]
        started = time.perf_counter()
        batch = self._spawn(["batch", str(self.rows), "--stale-after", f"{self.cfg.stale_after_s:g}",
                             "--no-progress", "--out", str(self.out)], self.folder / "batch.log")
        try:
            for _ in range(self.cfg.workers):
                self._start_worker()
            kills = [self._kill_at(at_s, started, batch, rng) for at_s in planned]
            self._wait(batch, started)
            wall_s = time.perf_counter() - started
        finally:
            codes = self._stop_workers()
            if batch.poll() is None:
                batch.kill()
                batch.wait()
        if batch.returncode not in (0, 3):  # 3: the batch finished with failed rows (counted below)
            raise RuntimeError(f"deepsearch batch exited {batch.returncode}: {self._tail('batch.log')}")
        after = self.sandbox.stats()

        def grew(name: str, counter: str) -> float:
            return float(after[name].get(counter) or 0) - float(before[name].get(counter) or 0)

        starts = {name: grew(name, "jobs_started") for name in PAID}
        found = self._database(starts)
        return {"kills": kills, "wall_s": round(wall_s, 2), **found,
                "rate_limited": sum(grew(name, "rate_limited") for name in after),
                "starts_per_row": {name: count / self.cfg.rows for name, count in starts.items()},
                "peak_jobs_in_flight": {name: after[name].get("peak_jobs_in_flight") for name in PAID},
                "worker_exit_codes": codes, "records": read_records(self.out)}

    def _kill_at(self, at_s: float, started: float, batch: subprocess.Popen[bytes],
                 rng: random.Random) -> dict[str, Any]:
        """At ``at_s`` real seconds after ``started`` (or later, once a row runs and a worker is ready:
        killing a worker that holds no row, or is still starting, proves nothing), SIGKILL one worker that is
        ready (drawn by ``rng``), and start its replacement (when ``replace_killed``)."""
        running, ready = 0, []
        while batch.poll() is None:
            self._check_workers()
            if time.perf_counter() - started >= at_s:
                ready = [n for n, w in enumerate(self.workers, 1) if w.poll() is None and self._ready(n)]
                running = self._rows_running() if ready else 0
                if running:
                    break
            time.sleep(POLL_S)
        if batch.poll() is not None:
            return {"at_s": round(time.perf_counter() - started, 2), "planned_at_s": at_s, "pid": None,
                    "worker": None, "rows_running": 0}
        number = rng.choice(ready)
        victim = self.workers[number - 1]
        victim.kill()  # SIGKILL: no graceful stop, no unregistering; its heartbeat just stops
        killed_at = time.perf_counter() - started
        victim.wait()
        self.killed.add(victim.pid)
        if self.cfg.replace_killed:
            self._start_worker()
        return {"at_s": round(killed_at, 2), "planned_at_s": at_s, "pid": victim.pid, "worker": number,
                "rows_running": running}

    def _ready(self, number: int) -> bool:
        """Worker ``number`` (1-based, in start order) said it is connected and takes rows."""
        log = self.folder / f"worker-{number}.log"
        return log.exists() and f"worker bench-kill-{number}:" in log.read_text(errors="replace")

    def _wait(self, batch: subprocess.Popen[bytes], started: float) -> None:
        while batch.poll() is None:
            if time.perf_counter() - started > self.cfg.timeout_s:
                raise RuntimeError(f"the batch did not finish within {self.cfg.timeout_s:g} s: "
                                   f"{self._tail('batch.log')}")
            self._check_workers()
            time.sleep(POLL_S)

    def _check_workers(self) -> None:
        """Raises RuntimeError when no worker is left (each one that died on its own is in the logs)."""
        if all(w.poll() is not None for w in self.workers):
            tails = "\n".join(self._tail(f"worker-{n}.log") for n in range(1, len(self.workers) + 1))
            raise RuntimeError(f"every worker exited: {tails}")

    def _stop_workers(self) -> list[int | None]:
        """SIGTERM every worker alive (graceful), SIGKILL after 30 s; the exit codes of those not killed."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        return [w.returncode for w in self.workers if w.pid not in self.killed]

    def _tail(self, name: str) -> str:
        path = self.folder / name
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"{name}: {text[-2000:]}"

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(sql.encode(), params).fetchall()]

    def _rows_running(self) -> int:
        """Rows of the batch running now (all workers)."""
        found = self._query("SELECT count(*) FROM batch_rows r JOIN batches b USING (batch_id)"
                            " WHERE b.source = %s AND r.status = 'running'", (str(self.rows),))
        return int(found[0][0]) if found else 0

    def _database(self, starts: dict[str, float]) -> dict[str, Any]:
        """Rows by status, rows started once per provider (each one's journaled run holding exactly one
        submitted job no other row holds), starts no row accounts for, row jobs that ran more than once."""
        batch_ids = self._query("SELECT batch_id FROM batches WHERE source = %s", (str(self.rows),))
        if len(batch_ids) != 1:
            raise RuntimeError(f"expected one batch from {self.rows}, found {len(batch_ids)}")
        batch_id = str(batch_ids[0][0])
        by_status = {str(s): int(n) for s, n in self._query(
            "SELECT status, count(*) FROM batch_rows WHERE batch_id = %s GROUP BY status ORDER BY status",
            (batch_id,))}
        jobs = self._query("SELECT r.row_no, j.provider, j.job::text FROM batch_rows r JOIN jobs j USING (run_id)"
                           " WHERE r.batch_id = %s AND j.job IS NOT NULL", (batch_id,))
        once, unaccounted = {}, {}
        for provider in PAID:
            mine = [(row, job) for row, name, job in jobs if name == provider]
            per_row = Counter(row for row, _ in mine)
            holders = Counter(job for _, job in mine)
            once[provider] = sum(1 for row, job in mine if per_row[row] == 1 and holders[job] == 1)
            unaccounted[provider] = int(starts[provider]) - len(holders)
        retried = self._query("SELECT count(*) FROM procrastinate_jobs WHERE lock LIKE %s AND attempts > 1",
                              (f"{batch_id}:%",))
        return {"batch_id": batch_id, "rows_by_status": by_status, "rows_started_once": once,
                "unaccounted_starts": unaccounted, "jobs_retried": int(retried[0][0]) if retried else 0}


async def run_kill_bench(cfg: KillBenchConfig | None = None) -> BenchResult:
    """:func:`run` as a :class:`BenchResult` (a note instead of numbers without a database, or when skipped)."""
    cfg = cfg or KillBenchConfig()
    started = time.perf_counter()
    result = BenchResult(name="kill", title=f"Workers killed at random ({cfg.rows} rows, {cfg.kills} kills)")
    unmeasured = [Metric("rows done", None, "rows"), Metric("rows equal to one process's", None, "rows")]
    numbers = await measure_on_workers(result, cfg.skip, unmeasured, lambda: run(cfg))
    if numbers is None:
        return result
    made = sum(1 for kill in numbers["kills"] if kill["pid"] is not None)
    result.metrics += [
        Metric("wall time", numbers["wall_s"], "s"),
        at_least("workers SIGKILLed mid-run", made, cfg.kills, "kills"),
        at_least("rows done", numbers["rows_by_status"].get("done", 0), cfg.rows, "rows"),
        at_least("rows equal to one process's", numbers["rows_matching_reference"], cfg.rows, "rows"),
        at_most("429s served", numbers["rate_limited"], 0, "429s")]
    for p in PAID:
        result.metrics += [at_most(f"{p} starts per row", numbers["starts_per_row"][p], 1, "starts"),
                           at_least(f"{p}: rows paid exactly one start", numbers["rows_started_once"][p], cfg.rows,
                                    "rows"),
                           at_most(f"{p}: starts no row accounts for", numbers["unaccounted_starts"][p], 0, "starts")]
    peak = numbers["peak_jobs_in_flight"].get("sixtyfour")
    if peak is not None:
        result.metrics.append(at_most("Sixtyfour peak deep searches", float(peak), 5, "jobs"))
    result.notes += [f"kill {i} at {kill['at_s']} s: " + (f"worker {kill['worker']}, pid {kill['pid']} "
                                                          f"({kill['rows_running']} rows of the batch running)"
                                                          if kill["pid"] is not None else "the batch had finished")
                     for i, kill in enumerate(numbers["kills"], 1)]
    result.notes += [f"one process (no database): {numbers['reference']['wall_s']} s; seed {cfg.seed}, "
                     f"stale after {cfg.stale_after_s:g} s, "
                     + ("a new worker after each kill" if cfg.replace_killed else "no replacement workers"),
                     f"row jobs retried: {numbers['jobs_retried']}"]
    result.wall_s = time.perf_counter() - started
    return result

