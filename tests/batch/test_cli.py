"""``deepsearch batch`` as a user runs it (in-process, on a small fast in-process sandbox, no API keys)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from aggregator.cli import main
from aggregator.cli._batch import BatchView
from aggregator.journal import SqliteJournal
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE

CONFIG = "[sandbox]\ntime_scale = 0.002\nn_companies = 600\n"
UNSET = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
         "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG")
GOOD_JSONL = ('{"query": "VP of Engineering in New York", "max_results": 5, "providers": ["sixtyfour"]}\n'
              '{"query": "CTO in Berlin", "max_results": 3}\n'
              '{"query": "Series B SaaS companies in New York", "mode": "company", "max_results": 4,'
              ' "provider": "sixtyfour"}\n')
MIXED_CSV = ("query,max_results,providers,budget,email\n"
             "VP of Engineering in New York,5,sixtyfour,,\n"
             "CTO in Berlin,3,orbit,9,\n"  # Orbit's run costs 10: refused by the budget, nothing paid
             ",,,,nobody@nowhere.example\n"  # a lookup Orbit cannot corroborate
             "CEO in New York,4,sixtyfour,,\n")




def invoke(tmp_path: Path, *args: str | Path, sandbox: Path | None = None) -> Result:
    """``deepsearch batch *args`` in ``tmp_path`` (journal ``j.sqlite`` there), on an in-process sandbox or
    attached to the standalone one whose connection file is ``sandbox``."""
    (tmp_path / "fast.toml").write_text(CONFIG)
    env: dict[str, str | None] = {name: None for name in UNSET}
    env |= {"DEEPSEARCH_CONFIG": str(tmp_path / "fast.toml"), "DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite"),
            "COLUMNS": "200"}
    if sandbox is not None:
        env["DEEPSEARCH_SANDBOX"] = str(sandbox)
    return CliRunner().invoke(main, ["batch", *map(str, args)], env=env)


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[Path, Sandbox]]:
    """A sandbox served from a thread of its own (its jobs outlive each command, as a provider's do): its
    connection file, and the Sandbox (read its stats once no command runs)."""
    path, ready, box = tmp_path / "sandbox.json", threading.Event(), list[Any]()

    async def serve() -> None:
        config = SandboxConfig(time_scale=FAST_SCALE, n_companies=600, providers=("sixtyfour", "orbit"))
        async with Sandbox(config) as sandbox:
            stop = asyncio.Event()
            sandbox.connection().write(path)
            box.extend([sandbox, asyncio.get_running_loop(), stop])
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the sandbox did not start"
    try:
        yield path, box[0]
    finally:
        box[1].call_soon_threadsafe(box[2].set)
        thread.join(30)


@contextlib.contextmanager
def ctrl_c_after_the_first_row(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ctrl-C (SIGINT to this process: the command's handler cancels the batch) once a row has finished."""
    finished = BatchView.finished

    def interrupt(self: BatchView, result: Any) -> None:
        finished(self, result)
        os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(BatchView, "finished", interrupt)
        yield


def batch_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def journal_rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    path = tmp_path / "j.sqlite"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # no such table: nothing was recorded
            return []


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_a_jsonl_batch_writes_one_line_per_row_with_its_records_and_exits_0(tmp_path: Path) -> None:
    out, records = tmp_path / "out" / "results.jsonl", tmp_path / "records.jsonl"
    result = invoke(tmp_path, batch_file(tmp_path, "rows.jsonl", GOOD_JSONL), "--out", out, "--records-out", records,
                    "--concurrency", "2", "--no-progress")

    assert result.exit_code == 0, result.output
    lines = jsonl(out)
    assert [(x["row"], x["line"], x["status"], x["records"]) for x in lines] == [
        (1, 1, "done", 5), (2, 2, "done", 3), (3, 3, "done", 4)]
    (batch_id,) = {x["batch_id"] for x in lines}
    assert all(len(x["results"]) == x["records"] and x["error"] is None and x["run_id"] for x in lines)
    assert lines[2]["results"][0]["entity"]["kind"] == "company"
    recorded = jsonl(records)
    assert [r["row"] for r in recorded] == [1] * 5 + [2] * 3 + [3] * 4
    assert recorded[0]["record_id"] == lines[0]["results"][0]["record_id"]
    assert f"batch {batch_id} (" in result.stdout and "3 rows: 3 done, 0 failed" in result.stdout
    assert journal_rows(tmp_path, "SELECT count(*) FROM runs") == [(3,)]


def test_a_failing_row_does_not_stop_the_batch_and_the_exit_code_is_3(tmp_path: Path) -> None:
    out, records = tmp_path / "results.csv", tmp_path / "records.csv"
    result = invoke(tmp_path, batch_file(tmp_path, "rows.csv", MIXED_CSV), "--out", out, "--records-out", records)

    assert result.exit_code == 3, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["row"], r["line"], r["status"]) for r in rows] == [
        ("1", "2", "done"), ("2", "3", "failed"), ("3", "4", "failed"), ("4", "5", "done")]
    assert "BudgetExceededError" in rows[1]["error"] and rows[1]["credits"] == "0.0"
    assert "identity_not_corroborated" in rows[2]["error"]
    with records.open(newline="") as handle:
        flat = list(csv.DictReader(handle))
    assert [r["row"] for r in flat] == ["1"] * 5 + ["4"] * 4 and all(r["full_name"] for r in flat)
    assert "4 rows: 2 done, 2 failed" in result.stdout
    assert "failed row 2 (line 3)" in one_line(result.stdout)
    assert "--retry-failed" in result.stderr


def test_running_the_same_command_again_runs_nothing_and_resume_takes_the_batch_id(tmp_path: Path,
                                                                                   provider_calls: list[str]) -> None:
    rows = batch_file(tmp_path, "rows.csv", MIXED_CSV)
    first = invoke(tmp_path, rows, "--out", tmp_path / "first.jsonl")
    calls, runs = len(provider_calls), journal_rows(tmp_path, "SELECT run_id, status FROM runs ORDER BY run_id")

    again = invoke(tmp_path, rows, "--out", tmp_path / "again.jsonl")
    batch_id = jsonl(tmp_path / "first.jsonl")[0]["batch_id"]
    resumed = invoke(tmp_path, "--resume", batch_id[:6], "--out", tmp_path / "resumed.jsonl", "--no-progress")

    assert (first.exit_code, again.exit_code, resumed.exit_code) == (3, 3, 3), again.output + resumed.output
    assert len(provider_calls) == calls  # nothing was sent again
    assert journal_rows(tmp_path, "SELECT run_id, status FROM runs ORDER BY run_id") == runs
    assert jsonl(tmp_path / "again.jsonl") == jsonl(tmp_path / "first.jsonl") == jsonl(tmp_path / "resumed.jsonl")
    assert "(4 finished earlier, not run again)" in again.stdout and f"({rows}):" in resumed.stdout


def test_batch_status_shows_a_finished_batch_from_the_journal_file_without_a_database(tmp_path: Path) -> None:
    rows = batch_file(tmp_path, "rows.csv", MIXED_CSV)
    invoke(tmp_path, rows, "--no-progress")
    (batch_id,) = {row[0] for row in journal_rows(tmp_path, "SELECT batch_id FROM batches")}

    shown = invoke(tmp_path, "status", batch_id[:6])
    as_json = invoke(tmp_path, "status", batch_id, "--json")
    unknown = invoke(tmp_path, "status", "feedbeef")

    assert shown.exit_code == as_json.exit_code == 0, shown.output + as_json.output
    assert "2 done, 2 failed, 0 running, 0 queued" in shown.stdout and "complete" in shown.stdout
    status = orjson.loads(as_json.stdout)
    assert (status["batch_id"], status["total"], status["done"], status["failed"], status["queued"]) == (
        batch_id, 4, 2, 2, 0)
    assert status["complete"] is True and status["workers"] is None and status["records"] == 9
    assert unknown.exit_code == 2 and "no batch 'feedbeef'" in unknown.output
    assert status["budget"] is None


def test_a_batch_budget_is_shown_in_the_summary_and_status_and_bounds_the_rows_together(tmp_path: Path) -> None:
    rows = batch_file(tmp_path, "rows.jsonl", "".join(
        f'{{"query": "{q}", "max_results": 5, "providers": "orbit"}}\n'
        for q in ("CTO in Berlin", "CEO in New York", "VP of Sales in London", "CTO in London")))
    result = invoke(tmp_path, rows, "--budget", "25", "--concurrency", "1", "--no-progress", "--out",
                    tmp_path / "out.jsonl")

    assert result.exit_code == 3, result.output  # rows not run once the 25 credits were spent
    lines = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    spent = sum(line["credits"] for line in lines)
    assert 15 <= spent <= 25 and f"{spent:g} credits of the batch's budget of 25" in result.stdout
    not_run = "not run: the batch's budget of 25 credits is spent"
    assert [line["row"] for line in lines if (line["error"] or "").startswith(not_run)] == [3, 4]
    (batch_id,) = {row[0] for row in journal_rows(tmp_path, "SELECT batch_id FROM batches")}
    assert orjson.loads(invoke(tmp_path, "status", batch_id, "--json").stdout)["budget"] == 25


@pytest.mark.parametrize(("text", "name", "expected"), [
    ("query,max_result\nCTO,5\nCTO,x\n", "rows.csv",
     ["line 1: max_result: unknown column; did you mean 'max_results'?"]),
    ('{"query": "CTO", "provider": "nosuch"}\n{"query": "CTO", "max_results": 0}\n{"query": "CTO"}\n', "rows.jsonl",
     ["line 1: providers: unknown provider 'nosuch'",
      "line 2: max_results: Input should be greater than or equal to 1"]),
])
def test_an_invalid_file_exits_2_naming_every_line_and_field_and_nothing_is_sent(
        tmp_path: Path, provider_calls: list[str], text: str, name: str, expected: list[str]) -> None:
    result = invoke(tmp_path, batch_file(tmp_path, name, text), "--out", tmp_path / "new" / "results.jsonl")

    assert result.exit_code == 2, result.output
    for message in expected:
        assert message in result.stderr
    assert "nothing was run" in result.stderr
    assert provider_calls == [] and journal_rows(tmp_path, "SELECT * FROM runs") == []
    assert journal_rows(tmp_path, "SELECT * FROM batches") == [] and not (tmp_path / "new").exists()


@pytest.mark.parametrize(("args", "message"), [
    ([], "give a batch file"),
    (["{rows}", "--resume", "abcd"], "not both"),
    (["{rows}", "--concurrency", "0"], "--concurrency: must be at least 1"),
    (["{rows}", "--budget", "0"], "--budget: a batch's budget is credits above 0, got 0"),
    (["{rows}", "--budget", "-3"], "--budget: a batch's budget is credits above 0, got -3"),
    (["{rows}", "--out", "results.json"], "use a .jsonl or .csv file"),
    (["{rows}", "--out", "r.csv", "--records-out", "r.csv"], "another file than --out"),
    (["--resume", "feedface"], "no batch 'feedface'"),
    (["{tmp}/nosuch.csv"], "file not found"),
])
def test_usage_errors_exit_2(tmp_path: Path, provider_calls: list[str], args: list[str], message: str) -> None:
    rows = batch_file(tmp_path, "rows.jsonl", GOOD_JSONL)
    result = invoke(tmp_path, *[a.replace("{rows}", str(rows)).replace("{tmp}", str(tmp_path)) for a in args])

    assert result.exit_code == 2, result.output
    assert message in one_line(result.output) and provider_calls == []


def test_ctrl_c_leaves_the_batch_resumable_and_the_next_run_skips_finished_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = batch_file(tmp_path, "rows.jsonl", GOOD_JSONL)
    with ctrl_c_after_the_first_row(monkeypatch):
        stopped = invoke(tmp_path, rows, "--concurrency", "1")
    states = journal_rows(tmp_path, "SELECT row_no, status FROM batch_rows ORDER BY row_no")
    done_run = journal_rows(tmp_path, "SELECT run_id FROM batch_rows WHERE status = 'done'")

    assert stopped.exit_code == 130, stopped.output
    assert "interrupted: 1 of 3 rows finished" in one_line(stopped.stderr)
    assert "Continue with: deepsearch batch --resume" in one_line(stopped.stderr)
    assert "they start again" in one_line(stopped.stderr)  # the in-process sandbox's jobs ended with it
    assert states[0] == (1, "done") and {s for _, s in states[1:]} <= {"running", "pending"}

    again = invoke(tmp_path, rows, "--out", tmp_path / "results.jsonl", "--no-progress")
    assert again.exit_code == 0, again.output
    lines = jsonl(tmp_path / "results.jsonl")
    assert [x["status"] for x in lines] == ["done"] * 3 and lines[0]["run_id"] == done_run[0][0]
    assert "(1 finished earlier, not run again)" in again.stdout


def test_ctrl_c_on_a_standalone_sandbox_then_resume_continues_the_rows_runs_without_a_second_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standalone: tuple[Path, Sandbox]) -> None:
    connection, sandbox = standalone
    rows = batch_file(tmp_path, "rows.jsonl", "".join(
        f'{{"query": "{query}", "max_results": 5, "providers": ["sixtyfour"]}}\n'
        for query in ("VP of Engineering in New York", "CTO in Berlin", "CEO in New York", "VP of Sales in London")))
    runs: list[str] = []
    submitted = SqliteJournal.record_submitted

    async def ctrl_c_at_the_third_runs_job(self: SqliteJournal, run_id: str, provider: str, job: Any) -> None:
        await submitted(self, run_id, provider, job)
        if run_id not in runs:
            runs.append(run_id)
            if len(runs) == 3:  # with two rows at a time: a row has finished, the third has paid work running
                os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(SqliteJournal, "record_submitted", ctrl_c_at_the_third_runs_job)
        stopped = invoke(tmp_path, rows, "--concurrency", "2", sandbox=connection)
    in_progress = journal_rows(tmp_path, "SELECT b.run_id FROM batch_rows b JOIN runs r ON r.run_id = b.run_id"
                                         " WHERE b.status = 'running' AND r.status = 'interrupted'")
    batch_id = journal_rows(tmp_path, "SELECT batch_id FROM batches")[0][0]

    assert stopped.exit_code == 130, stopped.output
    assert (runs[2],) in in_progress and "start again" not in stopped.stderr
    assert f"Continue with: deepsearch batch --resume {batch_id}" in one_line(stopped.stderr)
    resumed = invoke(tmp_path, "--resume", batch_id, "--out", tmp_path / "results.jsonl", sandbox=connection)

    assert resumed.exit_code == 0, resumed.output
    lines = jsonl(tmp_path / "results.jsonl")
    assert [x["status"] for x in lines] == ["done"] * 4 and all(x["records"] == 5 for x in lines)
    assert {(run_id,) for run_id in {x["run_id"] for x in lines}} >= set(in_progress)  # the same runs, continued
    assert sandbox.stats()["providers"]["sixtyfour"]["jobs_started"] == 4  # one paid start per row in all


def test_an_output_that_cannot_be_written_after_the_batch_exits_1_naming_the_command_that_writes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aggregator.cli._batch as batch_cli

    async def full_disk(*_: Any) -> int:
        raise OSError(28, "No space left on device")

    rows = batch_file(tmp_path, "rows.jsonl", GOOD_JSONL)
    with monkeypatch.context() as patch:
        patch.setattr(batch_cli, "write_results", full_disk)
        failed = invoke(tmp_path, rows, "--out", tmp_path / "results.jsonl", "--no-progress")

    assert failed.exit_code == 1, failed.output
    assert "No space left on device" in failed.stderr
    command = one_line(failed.stderr).split("write it with: ")[1]
    assert command.startswith("deepsearch batch --resume ")
    written = invoke(tmp_path, *command.split()[2:])
    assert written.exit_code == 0 and len(jsonl(tmp_path / "results.jsonl")) == 3, written.output
