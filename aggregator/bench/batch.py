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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aggregator.bench.common import BenchResult, Metric, at_least, at_most
from aggregator.config import DATABASE_URL_ENV

__all__ = ["BatchBenchConfig", "run", "run_batch_bench"]

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
    compare records row by row; ``skip``: report nothing (``--quick``: this benchmark takes minutes)."""

    rows: int = 200
    workers: tuple[int, ...] = (1, 2, 4)
    concurrency: int = 4
    time_scale: float = 0.02
    n_companies: int = 1000
    database_url: str | None = None
    reference: bool = True
    skip: bool = False

    @classmethod
    def quick(cls) -> BatchBenchConfig:
        return cls(rows=8, workers=(1, 2), skip=True)


class _Sandbox:
    """A ``deepsearch sandbox serve`` subprocess and the environment that attaches to it."""

    def __init__(self, folder: Path, cfg: BatchBenchConfig) -> None:
        config = folder / "bench.toml"
        config.write_text(f"[sandbox]\nn_companies = {cfg.n_companies}\n\n[run]\ndeadline_s = 50000\n")
        self.connection = folder / "sandbox.json"
        self.env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("DEEPSEARCH_")}
        self.env |= {"DEEPSEARCH_CONFIG": str(config), "DEEPSEARCH_SANDBOX": str(self.connection),
                     "DEEPSEARCH_JOURNAL": str(folder / "journal.sqlite")}
        self.process = subprocess.Popen([sys.executable, "-m", "aggregator", "sandbox", "serve", "--time-scale",
                                         f"{cfg.time_scale:g}", "--connection-file", str(self.connection)],
                                        env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not self.connection.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the standalone sandbox did not start")
            time.sleep(0.1)
        self.base_urls: dict[str, str] = orjson.loads(self.connection.read_bytes())["base_urls"]

    def stats(self) -> dict[str, dict[str, Any]]:
        docs = {}
        for name, url in self.base_urls.items():
            with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=30) as resp:
                docs[name] = orjson.loads(resp.read())
        return docs

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def _sandbox(folder: Path, cfg: BatchBenchConfig) -> Iterator[_Sandbox]:
    """A fresh standalone sandbox for one run: its stats are that run's alone, and its Orbit accounts start
    with their whole balance (10,000 credits: about 400 of these searches)."""
    folder.mkdir(parents=True)
    sandbox = _Sandbox(folder, cfg)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def _rows(path: Path, count: int, max_results: int) -> Path:
    """``count`` people searches; a deadline of its own (virtual seconds, never reached) makes them a new
    batch, also on a database that ran this benchmark before."""
    queries = [f"{title} in {city}" for title in TITLES for city in CITIES]
    deadline_s = 40_000 + random.randrange(10**6) / 100
    path.write_bytes(b"".join(orjson.dumps({"query": queries[i % len(queries)], "max_results": max_results,
                                            "deadline_s": deadline_s}) + b"\n" for i in range(count)))
    return path


def _records(out: Path) -> dict[int, list[Any]]:
    """Each row's merged record ids, with the providers behind each, from ``--out FILE.jsonl``."""
    found = {}
    for line in out.read_bytes().splitlines():
        row = orjson.loads(line)
        found[row["row"]] = sorted((r["record_id"], sorted(r["providers"])) for r in row["results"])
    return found


def _batch(sandbox: _Sandbox, args: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run ``deepsearch batch *args --out out``; its wall seconds, what the sandbox counted, its records."""
    before = sandbox.stats()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aggregator", "batch", *args, "--no-progress", "--out", str(out)],
                          env=env, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"deepsearch batch {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    after = sandbox.stats()

    def grew(name: str, counter: str) -> float:
        return float(after[name].get(counter) or 0) - float(before[name].get(counter) or 0)

    return {"wall_s": round(wall_s, 2), "rate_limited": sum(grew(name, "rate_limited") for name in after),
            "starts": {name: grew(name, "jobs_started") for name in PAID},
            "peak_jobs_in_flight": {name: after[name].get("peak_jobs_in_flight") for name in PAID},
            "records": _records(out)}


def run(cfg: BatchBenchConfig | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns ``{"rows", "concurrency", "reference":
    {"wall_s", ...} | None, "runs": [{"workers", "wall_s", "rows_per_min", "rate_limited",
    "starts_per_row": {provider: float}, "peak_jobs_in_flight": {provider: int | None},
    "rows_matching_reference": int | None}]}`` (seconds are real seconds).

    Raises:
        ConfigError: no database URL (``database_url`` or ``$DEEPSEARCH_DATABASE_URL``).
        RuntimeError: the sandbox did not start, or a batch command failed (its stderr's end).
    """
    from aggregator.errors import ConfigError

    cfg = cfg or BatchBenchConfig()
    url = cfg.database_url or os.environ.get(DATABASE_URL_ENV, "").strip() or None
    if url is None:
        raise ConfigError("database_url", f"the batch benchmark runs workers on a database: set {DATABASE_URL_ENV} "
                                          "to a migrated one (deepsearch db migrate)")
    with tempfile.TemporaryDirectory(prefix="deepsearch-bench-batch-") as tmp:
        folder = Path(tmp)
        reference = None
        if cfg.reference:
            rows = _rows(folder / "reference.jsonl", cfg.rows, 1000)
            with _sandbox(folder / "reference", cfg) as sandbox:
                reference = _batch(sandbox, [str(rows), "--concurrency", str(cfg.concurrency * max(cfg.workers))],
                                   sandbox.env, folder / "reference-out.jsonl")
        runs = []
        for workers in cfg.workers:
            with _sandbox(folder / f"workers-{workers}", cfg) as sandbox:
                runs.append(_worker_run(sandbox, folder, cfg, workers, url, reference))
    ref = {k: v for k, v in reference.items() if k != "records"} if reference else None
    return {"rows": cfg.rows, "concurrency": cfg.concurrency, "reference": ref, "runs": runs}


def _worker_run(sandbox: _Sandbox, folder: Path, cfg: BatchBenchConfig, workers: int, url: str,
                reference: dict[str, Any] | None) -> dict[str, Any]:
    rows = _rows(folder / f"rows-{workers}.jsonl", cfg.rows, 1000)
    measured = _batch(sandbox, [str(rows), "--workers", str(workers), "--concurrency", str(cfg.concurrency)],
                      sandbox.env | {DATABASE_URL_ENV: url}, folder / f"out-{workers}.jsonl")
    records = measured.pop("records")
    matching = (sum(1 for row, keys in records.items() if reference["records"].get(row) == keys)
                if reference is not None else None)
    return {"workers": workers, **measured, "rows_per_min": round(cfg.rows / measured["wall_s"] * 60, 1),
            "starts_per_row": {name: count / cfg.rows for name, count in measured.pop("starts").items()},
            "rows_matching_reference": matching}


async def run_batch_bench(cfg: BatchBenchConfig | None = None) -> BenchResult:
    """:func:`run` as a :class:`BenchResult` (a note instead of numbers without a database, or when skipped)."""
    cfg = cfg or BatchBenchConfig()
    started = time.perf_counter()
    result = BenchResult(name="batch", title=f"Batch on workers ({cfg.rows} rows)")
    unmeasured = [Metric(f"{n} worker(s): throughput", None, "rows/min") for n in cfg.workers]
    if cfg.skip:
        result.metrics, result.notes = unmeasured, ["not in --quick: it runs worker processes for minutes "
                                                    "(deepsearch bench --only batch)"]
        return result
    from aggregator.errors import ConfigError

    try:
        numbers = await asyncio.to_thread(run, cfg)
    except ConfigError as exc:
        result.metrics, result.notes = unmeasured, [f"not measured: {exc}"]
        return result
    result.details = numbers
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
    if numbers["reference"] is not None:
        result.notes.append(f"one process (no database): {numbers['reference']['wall_s']} s")
    result.wall_s = time.perf_counter() - started
    return result
