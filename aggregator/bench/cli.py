"""``deepsearch bench``: run the benchmarks on the in-process sandbox, print a table each, write JSON.

::

    deepsearch bench                                  # everything, full sizes (a few minutes)
    deepsearch bench --only ratelimit --only fanout   # some of them
    deepsearch bench --quick --out /tmp/bench.json    # small sizes: checks the machinery in seconds
    deepsearch bench --only overhead --concurrency 1,100,1000 --time-scale 0.5

Exit code 0; with ``--fail-on-miss``, 1 when a target was missed. The JSON document is described
in :mod:`aggregator.bench.suite`; what each benchmark measures, in its module's docstring.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.table import Table

from aggregator.bench.common import BenchResult, Metric
from aggregator.bench.suite import BENCHMARKS, Options, run_benchmarks, run_benchmarks_async

__all__ = ["bench", "format_value", "result_table", "run_benchmarks"]

VERDICTS = {True: "[green]pass[/green]", False: "[red]miss[/red]", None: "[dim]-[/dim]"}


def format_value(metric: Metric) -> str:
    """``1.073x``, ``0.0124 s``, ``228 MiB``, ``81,234 records/s``, ``0 429s``; ``n/a`` when missing."""
    value = metric.value
    if value is None:
        return "n/a"
    if metric.unit == "x":
        return f"{value:.3f}x"
    if metric.unit == "s":
        return f"{value:.4g} s"
    if metric.unit == "MiB":
        return f"{value:.0f} MiB"
    if metric.unit == "records/s":
        return f"{value:,.0f} records/s"
    return f"{value:g} {metric.unit}"


def result_table(result: BenchResult) -> Table:
    """One benchmark as a rich table: metric, value, target, verdict, reference."""
    table = Table(title=f"{result.title}  [dim]({result.wall_s:.1f} s)[/dim]", title_justify="left")
    for column in ("metric", "value", "target", "", "reference"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for metric in result.metrics:
        table.add_row(metric.name, format_value(metric), metric.target or "", VERDICTS[metric.passed],
                      metric.reference or "")
    if result.notes:
        table.caption = "; ".join(result.notes)
        table.caption_justify = "left"
    return table


def _levels(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        levels = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("use comma-separated integers, e.g. 1,100,1000", param_hint="--concurrency") from None
    if not levels or min(levels) < 1:
        raise click.BadParameter("levels must be >= 1", param_hint="--concurrency")
    return levels


@click.command("bench")
@click.option("--only", "only", multiple=True, type=click.Choice(list(BENCHMARKS)),
              help="Run only this benchmark (repeatable). Default: all.")
@click.option("--quick", is_flag=True, help="Small sizes at a small time scale (seconds; for tests and CI).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-results.json"),
              show_default=True, help="Where to write the JSON results.")
@click.option("--concurrency", "concurrency", default=None, metavar="N,N,...",
              help="Concurrent searches of the overhead benchmark (default 1,100,1000; quick 1,20).")
@click.option("--time-scale", "time_scale", type=click.FloatRange(min=0.0001, max=1.0), default=None,
              help="Time scale of the overhead benchmark (default 1.0: documented provider timings in real time).")
@click.option("--fail-on-miss", is_flag=True, help="Exit 1 when a target is missed.")
def bench(only: tuple[str, ...], quick: bool, out: Path, concurrency: str | None, time_scale: float | None,
          fail_on_miss: bool) -> None:
    """Benchmarks on the in-process sandbox: scheduler overhead, rate-limit utilization, fan-out,
    time to first record and normalization throughput. Prints a table per benchmark, writes JSON."""
    levels = _levels(concurrency)
    console = Console() if sys.stdout.isatty() else Console(width=140)
    console.print(f"[bold]deepsearch bench[/bold] on the in-process sandbox ({'quick' if quick else 'full'} sizes)")

    def show(result: BenchResult) -> None:
        console.print(result_table(result))

    doc = asyncio.run(run_benchmarks_async(list(only) or None, Options(quick, levels, time_scale), on_result=show))
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    verdict = {True: "every target met", False: "some targets missed", None: "no targets checked"}[doc["passed"]]
    console.print(f"{verdict}; {doc['wall_s']:.1f} s in all; results written to {out}")
    if fail_on_miss and doc["passed"] is False:
        sys.exit(1)
