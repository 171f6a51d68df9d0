"""A batch's output files, written from the batch store and the journal (so rows finished by an earlier
process are included), in row order, each file replaced at once (written aside, then renamed).

- :func:`write_results`: one line per row. ``.jsonl``: ``{row, line, batch_id, run_id, status, records,
  credits, error, results}`` where ``results`` is the row's merged records (each as in a report's
  ``records``); ``.csv``: the same columns without ``results``.
- :func:`write_records`: one line per merged record of every row. ``.jsonl``: ``{row, run_id, **record}``;
  ``.csv``: ``row``, ``run_id``, then the record's flat columns (person and/or company fields, as the rows'
  modes need, then ``record_id``, ``providers``, ``consensus``, ``best_rank``), as ``deepsearch search --out``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from aggregator.batch.store import BatchSpec, RowState
from aggregator.errors import ConfigError
from aggregator.models import Company, Person, SearchReport

__all__ = ["RESULT_COLUMNS", "RESULT_SUFFIXES", "ReportLoader", "write_records", "write_results"]

RESULT_COLUMNS = ("row", "line", "batch_id", "run_id", "status", "records", "credits", "error")
RESULT_SUFFIXES = (".jsonl", ".csv")
RECORD_TAIL = ("record_id", "providers", "consensus", "best_rank")
ReportLoader = Callable[[str], Awaitable[SearchReport | None]]
"""``await load(run_id)``: the run's report, or None (e.g. read from the journal)."""


def check_suffix(path: Path, flag: str) -> None:
    """Raise ConfigError naming ``flag`` unless ``path`` ends in ``.jsonl`` or ``.csv``."""
    if path.suffix.lower() not in RESULT_SUFFIXES:
        raise ConfigError(flag, f"use a .jsonl or .csv file, got {path.suffix or 'no extension'!r}")


@contextmanager
def _replacing(path: Path) -> Iterator[IO[str]]:
    """A text file written next to ``path`` that replaces it once complete (removed on error)."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with aside.open("w", newline="", encoding="utf-8") as handle:
            yield handle
        os.replace(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def _line(spec: BatchSpec, state: RowState, line: int) -> dict[str, Any]:
    return {"row": state.row, "line": line, "batch_id": spec.batch_id, "run_id": state.run_id,
            "status": state.status, "records": state.records, "credits": state.credits, "error": state.error}


async def write_results(path: Path, spec: BatchSpec, states: Sequence[RowState], load: ReportLoader) -> int:
    """Write one line per row of ``spec`` to ``path`` (``.jsonl`` with each row's records, or ``.csv``);
    returns the rows written. ``load`` gives a finished row's report (JSONL only).

    Raises:
        ConfigError: another extension. OSError: the file cannot be written (nothing is left half-written).
    """
    check_suffix(path, "--out")
    lines = {row.row: row.line for row in spec.rows}
    with _replacing(path) as handle:
        if path.suffix.lower() == ".csv":
            writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(_line(spec, state, lines.get(state.row, 0)) for state in states)
        else:
            for state in states:
                report = await load(state.run_id) if state.run_id and state.finished else None
                results = [record.model_dump(mode="json") for record in report.records] if report else []
                line = {**_line(spec, state, lines.get(state.row, 0)), "results": results}
                handle.write(orjson.dumps(line).decode() + "\n")
    return len(states)


def record_columns(spec: BatchSpec) -> list[str]:
    """The CSV columns of :func:`write_records`: the entity fields of the rows' modes, and the record's."""
    modes = {str(row.fields.get("mode", "people")) for row in spec.rows}
    entity: list[str] = []
    for mode, model in (("people", Person), ("company", Company)):
        if mode in modes:
            entity += [name for name in model.model_fields if name != "kind" and name not in entity]
    return ["row", "run_id", *entity, *RECORD_TAIL]


async def write_records(path: Path, spec: BatchSpec, states: Sequence[RowState], load: ReportLoader) -> int:
    """Write every merged record of every finished row of ``spec`` to ``path`` (``.jsonl`` or ``.csv``),
    row by row; returns the records written.

    Raises:
        ConfigError: another extension. OSError: the file cannot be written (nothing is left half-written).
    """
    from aggregator.render import flat_record

    check_suffix(path, "--records-out")
    count = 0
    with _replacing(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=record_columns(spec)) if path.suffix.lower() == ".csv" else None
        if writer is not None:
            writer.writeheader()
        for state in states:
            report = await load(state.run_id) if state.run_id and state.finished else None
            for record in report.records if report else ():
                count += 1
                if writer is not None:
                    writer.writerow({"row": state.row, "run_id": state.run_id, **flat_record(record)})
                else:
                    data = {"row": state.row, "run_id": state.run_id, **record.model_dump(mode="json")}
                    handle.write(orjson.dumps(data).decode() + "\n")
    return count
