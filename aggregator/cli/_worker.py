"""``deepsearch worker``: run batch rows queued in the database (``deepsearch batch FILE`` enqueues them).

Any number of workers, on any machines, with the same ``DEEPSEARCH_DATABASE_URL`` and provider keys, share
one batch's rows: each takes row jobs from the queue, ``--concurrency`` at a time, and runs each row's
search through the shared journal, rate limits and job slots. A worker that dies (SIGKILL, a lost machine)
stops heartbeating; after ``--stale-after`` seconds any other worker (or a waiting ``deepsearch batch``)
puts its rows back in the queue, and the next worker resumes each row's run from the journal: nothing
started or paid twice. See :mod:`aggregator.batch.queue`.

SIGTERM or Ctrl-C stops the worker gracefully: no new row is taken, rows in progress get
``--shutdown-timeout`` seconds to finish, then are cancelled (their runs are marked interrupted and their
jobs go back to the queue, to be resumed by a worker). A second Ctrl-C stops at once.

``--metrics-port N`` serves Prometheus metrics (:mod:`aggregator.telemetry.metrics`) at
``http://127.0.0.1:N/metrics`` (``--metrics-host`` to listen elsewhere); it needs the ``metrics`` extra.

Exit codes: 0 stopped; 2 usage or configuration error: no database URL (DEEPSEARCH_DATABASE_URL), an
unreachable or unmigrated database, no provider to run, a metrics port out of range or in use, or
``--metrics-port`` without the ``metrics`` extra.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from aggregator.batch.workers import DEFAULT_QUEUE, DEFAULT_STALE_AFTER_S, STALE_AFTER_ENV
from aggregator.cli._support import EXIT_OK, announce, err, settings_for, usage_error
from aggregator.config import DATABASE_URL_ENV
from aggregator.db import require_driver
from aggregator.errors import ConfigError
from aggregator.render import counted
from aggregator.telemetry.cli import check_metrics_options, metrics_options, start_metrics

if TYPE_CHECKING:
    from aggregator.batch import RowResult
    from aggregator.batch.queue import WorkerConfig
    from aggregator.config import Settings
    from aggregator.core import Aggregator

__all__ = ["worker_command"]


@click.command("worker")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Rows this worker runs at once.")
@click.option("--queue", "queues", multiple=True, metavar="NAME",
              help="Take rows of this queue (repeatable); default: deepsearch (where `batch` enqueues).")
@click.option("--stale-after", "stale_after_s", type=float, default=DEFAULT_STALE_AFTER_S, show_default=True,
              envvar=STALE_AFTER_ENV,
              help=f"Seconds without a heartbeat after which a worker is taken for dead and its rows are run "
                   f"again by another (heartbeats every third of it; also ${STALE_AFTER_ENV}).")
@click.option("--shutdown-timeout", "shutdown_timeout_s", type=float, default=30.0, show_default=True,
              help="On SIGTERM or Ctrl-C, seconds rows in progress get to finish before they are put back "
                   "in the queue.")
@click.option("--name", default=None, help="This worker's name in logs; default HOST-PID.")
@click.option("--sandbox", is_flag=True, help="Force the local sandbox.")
@click.option("--live", is_flag=True, help="Force the real provider APIs (keys required).")
@click.option("--config", type=click.Path(dir_okay=False), help="A TOML file over config/default.toml.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print a line per row.")
@click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr).")
@metrics_options
def worker_command(concurrency: int, queues: tuple[str, ...], stale_after_s: float, shutdown_timeout_s: float,
                   name: str | None, sandbox: bool, live: bool, config: str | None, quiet: bool,
                   verbose: int, metrics_port: int | None, metrics_host: str | None) -> None:
    """Run batch rows queued in the database (DEEPSEARCH_DATABASE_URL) until stopped.

    Start one or more on each machine that has the database URL and the provider keys; `deepsearch batch
    FILE` enqueues a batch's rows, `deepsearch batch status BATCH_ID` shows its progress. SIGTERM stops
    gracefully. --metrics-port N serves Prometheus metrics at http://127.0.0.1:N/metrics."""
    try:
        check_metrics_options(metrics_port, metrics_host)
        settings = settings_for(config, sandbox, live, verbose)
        if settings.database.url is None:
            raise ConfigError("database.url", f"a worker takes batch rows from the database: set {DATABASE_URL_ENV} "
                                              "(or [database] url in the config) to the postgresql:// URL the batch "
                                              "was enqueued in; without a database, `deepsearch batch FILE` runs "
                                              "the rows itself")
        require_driver()
        from aggregator.batch.queue import WorkerConfig

        worker = WorkerConfig(concurrency=concurrency, queues=queues or (DEFAULT_QUEUE,),
                              stale_after_s=stale_after_s, shutdown_timeout_s=shutdown_timeout_s, name=name)
        worker.check()
        metrics_url = start_metrics(metrics_port, metrics_host)
        if metrics_url is not None:
            err.print(f"metrics at {metrics_url}", highlight=False, markup=False)
        asyncio.run(_work(settings, worker, quiet))
    except ConfigError as exc:
        usage_error(exc)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once (rows in progress are retried once stale)
        err.print("stopped at once; rows in progress go back to the queue once this worker is stale",
                  highlight=False)
        sys.exit(130)
    sys.exit(EXIT_OK)


async def _work(settings: Settings, worker: WorkerConfig, quiet: bool) -> None:
    """Run the worker until it is stopped; a line when it is ready and when it stopped."""
    from aggregator.batch.queue import run_worker
    from aggregator.db import address, database_url

    url = database_url(settings.database)
    assert url is not None

    def ready(agg: Aggregator) -> None:
        announce(agg)
        err.print(f"worker {worker.worker_name()}: {address(url)}, queue {', '.join(worker.queues)}, "
                  f"{counted(worker.concurrency, 'row')} at a time; SIGTERM or Ctrl-C stops it",
                  highlight=False, markup=False)

    await run_worker(settings, worker, on_row=None if quiet else _print_row, on_ready=ready)
    err.print(f"worker {worker.worker_name()}: stopped", highlight=False, markup=False)


def _print_row(result: RowResult) -> None:
    where = f"row {result.row}" + (f" (line {result.line})" if result.line else "")
    what = (f"done, {counted(result.records, 'record')}, {counted(result.credits, 'credit')}"
            if result.status == "done" else f"failed: {result.error}")
    resumed = ", resumed its run" if result.resumed else ""
    err.print(f"batch {result.batch_id} {where}: {what} (run {result.run_id}{resumed})", highlight=False,
              markup=False, soft_wrap=True)
