"""Issue 16 item 3: with a database, batch rows are Procrastinate jobs run by ``deepsearch worker`` processes.

Every test here runs real processes: a standalone sandbox (its stats count paid starts and 429s across
every client process), ``deepsearch batch`` and ``deepsearch worker`` subprocesses on a fresh PostgreSQL
database. The proof of item 5, at test size: workers finish a batch with the records of the same batch run
in one process, no 429 is served, Sixtyfour never runs more than 5 deep searches at once; with a worker
SIGKILLed mid-run, every row still ends with those records and each provider was paid one start per row.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.workers.conftest import (
    ROWS,
    STALE_AFTER_S,
    RecordKeys,
    Standalone,
    deepsearch,
    grew,
    query,
    records_by_row,
    spawn,
    stop,
)

PAID = ("sixtyfour", "orbit")  # the providers of a people search (Extruct searches companies)


def batch_id_of(stderr: str) -> str:
    line = next(line for line in stderr.splitlines() if line.startswith("batch ") and " enqueued" in line)
    return line.split()[1].rstrip(":")


def assert_paid_once_per_row_and_no_429(before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]
                                       ) -> None:
    started = grew(before, after, "jobs_started")
    assert {p: started[p] for p in PAID} == dict.fromkeys(PAID, len(ROWS)), "one paid start per row and provider"
    assert grew(before, after, "rate_limited") == dict.fromkeys(after, 0.0), "no emulator served a 429"
    peak = after["sixtyfour"].get("peak_jobs_in_flight")
    assert peak is None or int(str(peak)) <= 5, "Sixtyfour ran at most 5 deep searches at once"


def test_a_worker_without_a_database_url_exits_2_naming_the_variable(standalone: Standalone) -> None:
    done = deepsearch(standalone, "worker", database=None)

    assert done.returncode == 2
    assert "DEEPSEARCH_DATABASE_URL" in done.stderr and "database.url" in done.stderr


@pytest.mark.parametrize("flag", [["--workers", "2"], ["--no-wait"], ["--queue", "q"]])
def test_the_database_flags_of_batch_without_a_database_exit_2_naming_the_variable(
        standalone: Standalone, rows_file: Path, flag: list[str]) -> None:
    done = deepsearch(standalone, "batch", rows_file, *flag, database=None)

    assert done.returncode == 2
    assert f"error: {flag[0]}:" in done.stderr and "DEEPSEARCH_DATABASE_URL" in done.stderr


def test_running_batch_file_twice_enqueues_each_row_once_and_status_shows_them_queued(
        standalone: Standalone, rows_file: Path, database: str) -> None:
    first = deepsearch(standalone, "batch", rows_file, "--no-wait", database=database)
    second = deepsearch(standalone, "batch", rows_file, "--no-wait", database=database)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert f"{len(ROWS)} enqueued, 0 queued already" in first.stderr
    assert f"0 enqueued, {len(ROWS)} queued already" in second.stderr
    batch_id = batch_id_of(first.stderr)
    jobs = query(database, "SELECT count(*), count(DISTINCT lock), count(DISTINCT queueing_lock),"
                           " min(status::text), max(status::text) FROM procrastinate_jobs")
    assert jobs == [(len(ROWS), len(ROWS), len(ROWS), "todo", "todo")]
    assert {lock for (lock,) in query(database, "SELECT lock FROM procrastinate_jobs")} == \
        {f"{batch_id}:{n}" for n in range(1, len(ROWS) + 1)}

    status = deepsearch(standalone, "batch", "status", batch_id[:8], "--json", database=database)
    assert status.returncode == 0, status.stderr
    assert orjson.loads(status.stdout) | {"created_at": None} == {
        "batch_id": batch_id, "source": str(rows_file), "created_at": None, "total": len(ROWS), "done": 0,
        "failed": 0, "running": 0, "queued": len(ROWS), "records": 0, "credits": 0.0, "complete": False,
        "workers": 0, "budget": None}
    shown = deepsearch(standalone, "batch", "status", batch_id, database=database)
    assert f"0 done, 0 failed, 0 running, {len(ROWS)} queued" in shown.stdout and "in progress" in shown.stdout
    resumed = deepsearch(standalone, "batch", "--resume", batch_id[:6], "--no-wait", database=database)
    assert resumed.returncode == 0 and f"0 enqueued, {len(ROWS)} queued already" in resumed.stderr, resumed.stderr
    assert query(database, "SELECT count(*) FROM procrastinate_jobs") == [(len(ROWS),)]


@pytest.mark.timeout(150)  # with the module's reference batch (one process) on a loaded machine
def test_three_local_workers_finish_the_batch_with_the_records_of_one_process_and_no_429(
        standalone: Standalone, rows_file: Path, database: str, reference: dict[int, RecordKeys],
        tmp_path: Path) -> None:
    before = standalone.stats()
    started = time.perf_counter()
    done = deepsearch(standalone, "batch", rows_file, "--workers", "3", "--stale-after", STALE_AFTER_S,
                      "--out", tmp_path / "workers.jsonl", database=database)
    wall_s = time.perf_counter() - started

    assert done.returncode == 0, done.stderr
    assert "started 3 local workers" in done.stderr
    assert records_by_row(tmp_path / "workers.jsonl") == reference
    assert_paid_once_per_row_and_no_429(before, standalone.stats())
    status = orjson.loads(deepsearch(standalone, "batch", "status", batch_id_of(done.stderr), "--json",
                                     database=database).stdout)
    assert (status["done"], status["complete"], status["workers"]) == (len(ROWS), True, 0)  # workers stopped
    assert wall_s < 100


@pytest.mark.timeout(150)
def test_a_worker_killed_mid_run_leaves_no_row_behind_and_no_start_paid_twice(
        standalone: Standalone, rows_file: Path, database: str, reference: dict[int, RecordKeys],
        tmp_path: Path) -> None:
    enqueued = deepsearch(standalone, "batch", rows_file, "--no-wait", database=database)
    assert enqueued.returncode == 0, enqueued.stderr
    before = standalone.stats()
    doomed = spawn(standalone, "worker", "--concurrency", "2", "--stale-after", STALE_AFTER_S, database=database,
                   log=tmp_path / "doomed.log")
    try:
        killed = wait_for_paid_rows(database, 2, doomed, tmp_path / "doomed.log")
    finally:
        doomed.kill()  # SIGKILL: no graceful stop, no unregistering, its heartbeat just stops
        doomed.wait()
    others = [spawn(standalone, "worker", "--stale-after", STALE_AFTER_S, database=database,
                    log=tmp_path / f"worker-{i}.log") for i in (1, 2)]
    try:
        done = deepsearch(standalone, "batch", rows_file, "--stale-after", STALE_AFTER_S, "--out",
                          tmp_path / "killed.jsonl", database=database)
    finally:
        assert [stop(worker) for worker in others] == [0, 0], "the other workers stop gracefully"

    assert done.returncode == 0, done.stderr
    assert records_by_row(tmp_path / "killed.jsonl") == reference
    assert_paid_once_per_row_and_no_429(before, standalone.stats())
    resumed = dict(query(database, "SELECT row_no, run_id FROM batch_rows WHERE row_no = ANY(%s)", (list(killed),)))
    assert resumed == killed, "the killed worker's rows resumed their runs (no new run, no new start)"
    assert query(database, "SELECT run_id, provider, hit->>'provider_record_id' FROM hits GROUP BY 1, 2, 3"
                           " HAVING count(*) > 1") == [], "no record journaled twice"


def wait_for_paid_rows(database: str, count: int, worker: subprocess.Popen[bytes], log: Path) -> dict[int, str]:
    """Wait until ``count`` rows run with both providers' jobs submitted (paid) and none finished; their run ids."""
    sql = ("SELECT r.row_no, r.run_id FROM batch_rows r WHERE r.status = 'running' AND"
           " (SELECT count(*) FROM jobs j WHERE j.run_id = r.run_id AND j.job IS NOT NULL) = 2")
    deadline = time.monotonic() + 60
    while True:
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {count} rows were paid for in time: {log.read_text()}"
        assert not query(database, "SELECT 1 FROM batch_rows WHERE status IN ('done', 'failed')"), \
            "a row finished before the kill: the kill would not be mid-run"
        running = dict(query(database, sql))
        if len(running) >= count:
            return running
        time.sleep(0.02)


def test_sigterm_stops_a_worker_gracefully_and_its_rows_go_back_to_the_queue_at_once(
        standalone: Standalone, rows_file: Path, database: str, tmp_path: Path) -> None:
    enqueued = deepsearch(standalone, "batch", rows_file, "--no-wait", database=database)
    assert enqueued.returncode == 0, enqueued.stderr
    worker = spawn(standalone, "worker", "--concurrency", "2", "--shutdown-timeout", "0", database=database,
                   log=tmp_path / "worker.log")
    try:
        running = wait_for_paid_rows(database, 2, worker, tmp_path / "worker.log")
    finally:
        code = stop(worker)

    assert code == 0, (tmp_path / "worker.log").read_text()
    assert "stopped" in (tmp_path / "worker.log").read_text()
    keys = [f"{batch_id_of(enqueued.stderr)}:{row}" for row in running]
    assert query(database, "SELECT DISTINCT status::text FROM procrastinate_jobs WHERE lock = ANY(%s)", (keys,)) \
        == [("todo",)], "cancelled at once and put back in the queue, without waiting to be taken for dead"
    assert query(database, "SELECT count(*) FROM procrastinate_workers") == [(0,)]  # unregistered
    assert {status for (status,) in query(database, "SELECT status FROM runs WHERE run_id = ANY(%s)",
                                          (list(running.values()),))} == {"interrupted"}


@pytest.mark.timeout(150)
def test_four_workers_never_spend_more_than_the_batchs_budget_together(
        standalone: Standalone, rows_file: Path, database: str, tmp_path: Path) -> None:
    budget = 150  # Orbit charges 10 per run and 1 per profile read (Orbit §3.4, §5): far less than 24 rows cost
    before = standalone.stats()
    done = deepsearch(standalone, "batch", rows_file, "--workers", "4", "--concurrency", "3", "--budget", str(budget),
                      "--stale-after", STALE_AFTER_S, "--out", tmp_path / "budget.jsonl", database=database)
    after = standalone.stats()

    assert done.returncode in (0, 3), done.stderr  # 3: rows not run once the budget was spent
    paid = grew(before, after, "credits_charged")["orbit"]
    assert budget - 10 < paid <= budget, "the four workers spent the budget together and never more"
    assert grew(before, after, "rate_limited") == dict.fromkeys(after, 0.0)
    lines = [orjson.loads(line) for line in (tmp_path / "budget.jsonl").read_bytes().splitlines()]
    assert sum(line["credits"] for line in lines) == paid
    not_run = [line for line in lines if (line["error"] or "").startswith("not run: the batch's budget of 150")]
    assert not_run and all(line["run_id"] is None and line["credits"] == 0 for line in not_run)
    assert f"of the batch's budget of {budget}" in done.stdout
    status = orjson.loads(deepsearch(standalone, "batch", "status", batch_id_of(done.stderr), "--json",
                                     database=database).stdout)
    assert status["budget"] == budget and status["complete"] is True
