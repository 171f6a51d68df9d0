"""Batches: one search (or lookup) per row of a CSV or JSONL file, run N at a time, resumable row by row.

::

    rows = validate_file("accounts.csv")             # every line checked; BatchValidationError lists the bad ones
    async with Aggregator(job_store=journal) as agg:
        async with agg.batch(rows, concurrency=8) as run:
            async for result in run:                 # RowResult, one per row, as rows finish
                print(result.row, result.status, result.records, result.credits)

- :mod:`aggregator.batch.rows`: the row model, the file formats, validation, the batch id;
- :mod:`aggregator.batch.store`: the :class:`BatchStore` protocol, in memory and SQLite;
- :mod:`aggregator.batch.runner`: :func:`run_batch` / :class:`BatchRun` (what ``Aggregator.batch`` returns);
- :mod:`aggregator.batch.output`: the result files of ``deepsearch batch --out`` / ``--records-out``;
- with a database (imported only then): :mod:`aggregator.batch.pgstore` (the batch store in PostgreSQL),
  :mod:`aggregator.batch.queue` (rows as Procrastinate jobs, ``deepsearch worker``, stalled-row retry) and
  :mod:`aggregator.batch.workers` (local worker processes of ``deepsearch batch --workers N``).
"""

from aggregator.batch.output import write_records, write_results
from aggregator.batch.rows import (
    BatchProblem,
    BatchRow,
    BatchValidationError,
    RowKind,
    batch_id_of,
    parse_row,
    rows_from,
    validate_file,
)
from aggregator.batch.runner import DEFAULT_CONCURRENCY, BatchProgress, BatchRun, RowResult, check_rows, run_batch
from aggregator.batch.store import (
    BatchSpec,
    BatchStore,
    InMemoryBatchStore,
    RowState,
    RowStatus,
    SqliteBatchStore,
    default_batch_store,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "BatchProblem",
    "BatchProgress",
    "BatchRow",
    "BatchRun",
    "BatchSpec",
    "BatchStore",
    "BatchValidationError",
    "InMemoryBatchStore",
    "RowKind",
    "RowResult",
    "RowState",
    "RowStatus",
    "SqliteBatchStore",
    "batch_id_of",
    "check_rows",
    "default_batch_store",
    "parse_row",
    "rows_from",
    "run_batch",
    "validate_file",
    "write_records",
    "write_results",
]
