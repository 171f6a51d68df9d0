"""Batch throughput on worker processes (issue 16, item 5): one batch of people searches run by 1, 2 and 4
``deepsearch worker`` processes against ONE standalone sandbox, and once in one process for reference.

::

    DEEPSEARCH_DATABASE_URL=postgresql://... deepsearch db migrate
    DEEPSEARCH_DATABASE_URL=postgresql://... deepsearch bench --only batch        # about 6 minutes
    python -c "from aggregator.bench.batch import run; print(run())"              # the numbers as a dict

How: for each run, a fresh ``deepsearch sandbox serve --time-scale 0.02`` subprocess (a 1,000-company world,
the same for every run) serves every process of the run through its connection file (``DEEPSEARCH_SANDBOX``),
so its ``GET /_sandbox/stats`` counts what every process did (and Orbit's accounts start each run with their
whole balance). The reference is ``deepsearch batch FILE --concurrency 16`` without a database (one
process, SQLite journal). Then, for each worker count N, ``deepsearch batch FILE --workers N`` with the
database (each worker runs ``concurrency`` rows at once); ``max_results`` is above what the providers find
(records are never cut) and each run's rows get a (never reached) deadline of their own: a new batch.

Reported per run: wall seconds (real, enqueue to the last row, workers' start-up included), rows per minute,
429s served by any emulator (target 0), paid starts per row per provider (target 1), Sixtyfour's peak
deep searches in flight (target <= 5; when the sandbox reports it) and rows whose records equal the
reference's. Sixtyfour's 5 concurrent deep searches bound every run's throughput: more workers share
that cap (the coordination layer holds it across processes), they do not raise it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aggregator.bench.common import BenchResult, Metric, at_least, at_most
from aggregator.config import DATABASE_URL_ENV

__all__ = ["PAID", "BatchBenchConfig", "StandaloneSandbox", "bench_database_url", "measure_on_workers",
           "read_records", "run", "run_batch_bench", "run_batch_command", "standalone_sandbox", "write_rows"]

TITLES = ("VP of Engineering", "CTO", "VP of Sales", "CEO", "VP of Product", "Head of Marketing", "CFO",
          "Head of Engineering")
CITIES = ("New York", "London", "Berlin", "San Francisco", "Paris")
PAID = ("sixtyfour", "orbit")
KEY_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
            "ORBIT_BASE_URL")


@dataclass(frozen=True)
class BatchBenchConfig:
    """``rows`` people searches; ``workers``: the worker counts to run them with, each worker running
    ``concurrency`` rows at once; the sandbox's ``time_scale`` and ``n_companies``; ``database_url``
    (default ``$DEEPSEARCH_DATABASE_URL``, migrated); ``reference``: also run the batch in one process and
    compare records row by row; ``budget_share``: then run the batch once more on ``max(workers)`` workers
    with a batch-wide ``--budget`` of this share of the credits the reference spent (None: no such run);
    ``skip``: report nothing (``--quick``: this benchmark takes minutes)."""

    rows: int = 200
    workers: tuple[int, ...] = (1, 2, 4)
    concurrency: int = 4
    time_scale: float = 0.02
    n_companies: int = 1000
    database_url: str | None = None
    reference: bool = True
    budget_share: float | None = 0.5
    skip: bool = False

    @classmethod
    def quick(cls) -> BatchBenchConfig:
        return cls(rows=8, workers=(1, 2), skip=True)


class StandaloneSandbox:
    """A ``deepsearch sandbox serve --time-scale time_scale`` subprocess (an ``n_companies`` world), its
    connection file in ``folder``, and ``env``: the environment that attaches a ``deepsearch`` process to it
    (no provider key, no ``DEEPSEARCH_*`` variable but its config, connection file and SQLite journal)."""

    def __init__(self, folder: Path, *, time_scale: float, n_companies: int) -> None:
        config = folder / "bench.toml"
        config.write_text(f"[sandbox]\nn_companies = {n_companies}\n\n[run]\ndeadline_s = 50000\n")
        self.connection = folder / "sandbox.json"
        self.env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("DEEPSEARCH_")}
        self.env |= {"DEEPSEARCH_CONFIG": str(config), "DEEPSEARCH_SANDBOX": str(self.connection),
                     "DEEPSEARCH_JOURNAL": str(folder / "journal.sqlite")}
        self.process = subprocess.Popen([sys.executable, "-m", "aggregator", "sandbox", "serve", "--time-scale",
                                         f"{time_scale:g}", "--connection-file", str(self.connection)],
                                        env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not self.connection.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the standalone sandbox did not start")
            time.sleep(0.1)
        self.base_urls: dict[str, str] = orjson.loads(self.connection.read_bytes())["base_urls"]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each provider's ``GET /_sandbox/stats`` document (counts of every process attached)."""
        docs = {}
        for name, url in self.base_urls.items():
            with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=30) as resp:
                docs[name] = orjson.loads(resp.read())
        return docs

    def stop(self) -> None:
        """SIGINT (a clean stop), then SIGKILL after 30 real seconds."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def standalone_sandbox(folder: Path, *, time_scale: float, n_companies: int) -> Iterator[StandaloneSandbox]:
    """A fresh standalone sandbox for one run, in new folder ``folder``: its stats are that run's alone, and
    its Orbit accounts start with their whole balance (10,000 credits: about 400 of these searches)."""
    folder.mkdir(parents=True)
    sandbox = StandaloneSandbox(folder, time_scale=time_scale, n_companies=n_companies)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def write_rows(path: Path, count: int, max_results: int) -> Path:
    """``count`` people searches; a deadline of its own (virtual seconds, never reached) makes them a new
    batch, also on a database that ran this benchmark before."""
    queries = [f"{title} in {city}" for title in TITLES for city in CITIES]
    deadline_s = 40_000 + random.randrange(10**6) / 100
    path.write_bytes(b"".join(orjson.dumps({"query": queries[i % len(queries)], "max_results": max_results,
                                            "deadline_s": deadline_s}) + b"\n" for i in range(count)))
    return path


def read_records(out: Path) -> dict[int, list[Any]]:
    """Each row's merged record ids, with the providers behind each (``{row: [[record_id, [provider,
    ...]], ...]}``, sorted), from ``--out FILE.jsonl``."""
    found = {}
    for line in out.read_bytes().splitlines():
        row = orjson.loads(line)
        found[row["row"]] = sorted((r["record_id"], sorted(r["providers"])) for r in row["results"])
    return found


def run_batch_command(sandbox: StandaloneSandbox, args: list[str], env: dict[str, str], out: Path,
                      ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run ``deepsearch batch *args --out out``: ``{"wall_s": real seconds, "rate_limited": 429s served,
    "starts": {provider: paid starts}, "credits_charged": credits every provider charged, "peak_jobs_in_flight":
    {provider: int | None}, "statuses": {status: rows}, "records": read_records(out)}`` (counts: what the
    sandbox counted meanwhile).

    Raises:
        RuntimeError: the command's exit code is not in ``ok_codes`` (the end of its stderr)."""
    before = sandbox.stats()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aggregator", "batch", *args, "--no-progress", "--out", str(out)],
                          env=env, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode not in ok_codes:
        raise RuntimeError(f"deepsearch batch {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    after = sandbox.stats()

    def grew(name: str, counter: str) -> float:
        return float(after[name].get(counter) or 0) - float(before[name].get(counter) or 0)

    return {"wall_s": round(wall_s, 2), "rate_limited": sum(grew(name, "rate_limited") for name in after),
            "starts": {name: grew(name, "jobs_started") for name in PAID},
            "credits_charged": sum(grew(name, "credits_charged") for name in after),
            "statuses": dict(Counter(orjson.loads(line)["status"] for line in out.read_bytes().splitlines())),
            "peak_jobs_in_flight": {name: after[name].get("peak_jobs_in_flight") for name in PAID},
            "records": read_records(out)}


def bench_database_url(given: str | None, bench: str) -> str:
    """``given``, else ``$DEEPSEARCH_DATABASE_URL``: the (migrated) database benchmark ``bench`` runs workers on.

    Raises:
        ConfigError: neither is set (the message names the variable and ``deepsearch db migrate``).
    """
    from aggregator.errors import ConfigError

    url = given or os.environ.get(DATABASE_URL_ENV, "").strip() or None
    if url is None:
        raise ConfigError("database_url", f"the {bench} benchmark runs workers on a database: set {DATABASE_URL_ENV} "
                                          "to a migrated one (deepsearch db migrate)")
    return url


def run(cfg: BatchBenchConfig | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns ``{"rows", "concurrency", "reference":
    {"wall_s", ...} | None, "runs": [{"workers", "wall_s", "rows_per_min", "rate_limited",
    "starts_per_row": {provider: float}, "peak_jobs_in_flight": {provider: int | None},
    "rows_matching_reference": int | None}]}`` (seconds are real seconds).

    Raises:
        ConfigError: no database URL (``database_url`` or ``$DEEPSEARCH_DATABASE_URL``).
        RuntimeError: the sandbox did not start, or a batch command failed (its stderr's end).
    """
    cfg = cfg or BatchBenchConfig()
    url = bench_database_url(cfg.database_url, "batch")
    with tempfile.TemporaryDirectory(prefix="deepsearch-bench-batch-") as tmp:
        folder = Path(tmp)
        reference = None
        if cfg.reference:
            rows = write_rows(folder / "reference.jsonl", cfg.rows, 1000)
            with standalone_sandbox(folder / "reference", time_scale=cfg.time_scale,
                                    n_companies=cfg.n_companies) as sandbox:
                reference = run_batch_command(sandbox, [str(rows), "--concurrency",
                                                        str(cfg.concurrency * max(cfg.workers))],
                                              sandbox.env, folder / "reference-out.jsonl")
        runs = []
        for workers in cfg.workers:
            with standalone_sandbox(folder / f"workers-{workers}", time_scale=cfg.time_scale,
                                    n_companies=cfg.n_companies) as sandbox:
                runs.append(_worker_run(sandbox, folder, cfg, workers, url, reference))
        budget_run = None
        if reference is not None and cfg.budget_share is not None:
            with standalone_sandbox(folder / "budget", time_scale=cfg.time_scale,
                                    n_companies=cfg.n_companies) as sandbox:
                budget_run = _budget_run(sandbox, folder, cfg, url, reference)
    ref = {k: v for k, v in reference.items() if k != "records"} if reference else None
    return {"rows": cfg.rows, "concurrency": cfg.concurrency, "reference": ref, "runs": runs,
            "budget_run": budget_run}


def _budget_run(sandbox: StandaloneSandbox, folder: Path, cfg: BatchBenchConfig, url: str,
                reference: dict[str, Any]) -> dict[str, Any]:
    """The batch on ``max(workers)`` workers under a batch-wide budget of ``budget_share`` of what the
    reference spent: ``{"workers", "budget", "credits_charged", "statuses", "rate_limited", "wall_s"}``."""
    workers = max(cfg.workers)
    budget = max(1.0, float(int(reference["credits_charged"] * (cfg.budget_share or 0))))
    rows = write_rows(folder / "rows-budget.jsonl", cfg.rows, 1000)
    measured = run_batch_command(sandbox, [str(rows), "--workers", str(workers), "--concurrency",
                                           str(cfg.concurrency), "--budget", f"{budget:g}"],
                                 sandbox.env | {DATABASE_URL_ENV: url}, folder / "out-budget.jsonl", ok_codes=(0, 3))
    return {"workers": workers, "budget": budget, **{k: measured[k] for k in (
        "credits_charged", "statuses", "rate_limited", "wall_s")}}


def _worker_run(sandbox: StandaloneSandbox, folder: Path, cfg: BatchBenchConfig, workers: int, url: str,
                reference: dict[str, Any] | None) -> dict[str, Any]:
    rows = write_rows(folder / f"rows-{workers}.jsonl", cfg.rows, 1000)
    measured = run_batch_command(sandbox, [str(rows), "--workers", str(workers), "--concurrency", str(cfg.concurrency)],
                      sandbox.env | {DATABASE_URL_ENV: url}, folder / f"out-{workers}.jsonl")
    records = measured.pop("records")
    matching = (sum(1 for row, keys in records.items() if reference["records"].get(row) == keys)
                if reference is not None else None)
    return {"workers": workers, **measured, "rows_per_min": round(cfg.rows / measured["wall_s"] * 60, 1),
            "starts_per_row": {name: count / cfg.rows for name, count in measured.pop("starts").items()},
            "rows_matching_reference": matching}


async def measure_on_workers(result: BenchResult, skip: bool, unmeasured: list[Metric],
                             run: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Run a benchmark that starts worker processes (``run``, in a thread: it blocks for minutes) for
    ``result``: its numbers (kept as ``result.details`` too), or None with ``unmeasured`` metrics and a note
    why when ``skip`` (``--quick``) or when no database is set (``run`` raised ConfigError)."""
    if skip:
        result.metrics, result.notes = unmeasured, ["not in --quick: it runs worker processes for minutes "
                                                    f"(deepsearch bench --only {result.name})"]
        return None
    from aggregator.errors import ConfigError

    try:
        numbers = await asyncio.to_thread(run)
    except ConfigError as exc:
        result.metrics, result.notes = unmeasured, [f"not measured: {exc}"]
        return None
    result.details = numbers
    return numbers


async def run_batch_bench(cfg: BatchBenchConfig | None = None) -> BenchResult:
    """:func:`run` as a :class:`BenchResult` (a note instead of numbers without a database, or when skipped)."""
    cfg = cfg or BatchBenchConfig()
    started = time.perf_counter()
    result = BenchResult(name="batch", title=f"Batch on workers ({cfg.rows} rows)")
    unmeasured = [Metric(f"{n} worker(s): throughput", None, "rows/min") for n in cfg.workers]
    numbers = await measure_on_workers(result, cfg.skip, unmeasured, lambda: run(cfg))
    if numbers is None:
        return result
    for one in numbers["runs"]:
        n = one["workers"]
        result.metrics += [Metric(f"{n} worker(s): wall time", one["wall_s"], "s"),
                           Metric(f"{n} worker(s): throughput", one["rows_per_min"], "rows/min"),
                           at_most(f"{n} worker(s): 429s served", one["rate_limited"], 0, "429s"),
                           *(at_most(f"{n} worker(s): {p} starts per row", one["starts_per_row"][p], 1, "starts")
                             for p in PAID)]
        peak = one["peak_jobs_in_flight"].get("sixtyfour")
        if peak is not None:
            result.metrics.append(at_most(f"{n} worker(s): Sixtyfour peak deep searches", float(peak), 5, "jobs"))
        if one["rows_matching_reference"] is not None:
            result.metrics.append(at_least(f"{n} worker(s): rows equal to one process's",
                                           one["rows_matching_reference"], cfg.rows, "rows"))
    if (spent := numbers["budget_run"]) is not None:
        n = spent["workers"]
        result.metrics += [at_most(f"{n} workers, batch budget {spent['budget']:g}: credits charged",
                                   spent["credits_charged"], spent["budget"], "credits"),
                           at_most(f"{n} workers, batch budget: 429s served", spent["rate_limited"], 0, "429s")]
        result.notes.append(f"under the batch budget: rows {spent['statuses']}")
    if numbers["reference"] is not None:
        result.notes.append(f"one process (no database): {numbers['reference']['wall_s']} s, "
                            f"{numbers['reference']['credits_charged']:g} credits")
    result.wall_s = time.perf_counter() - started
    return result
