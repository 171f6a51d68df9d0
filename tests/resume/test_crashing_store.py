"""The crash simulation itself: a crashed store is dead, and its disk keeps what a killed process leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.contract import JobRef
from aggregator.models import Hit, Person, SearchRequest
from tests.resume.crash import CrashingStore, CrashPoint, Disk, SimulatedCrash, SqliteDisk

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
REQUEST = SearchRequest(query="staff engineers in Berlin", max_results=10, providers=("fake",))
JOB = JobRef(provider="fake", job_id="job-1", idempotency_key="key-1", mode="people", submitted_at=NOW)


def hit(i: int) -> Hit:
    return Hit(provider="fake", provider_record_id=f"r{i}", job_id="job-1", rank=i + 1, retrieved_at=NOW,
               entity=Person(full_name=f"Person {i}"))


async def drive(store: CrashingStore) -> None:
    """The scheduler's writes for one job: intent, job, two pages (hits then checkpoint), done."""
    await store.record_run("run", REQUEST, NOW)
    await store.record_submit_intent("run", "fake", "key-1", REQUEST)
    await store.record_submitted("run", "fake", JOB)
    await store.record_state("run", "fake", "ready")
    for page in range(2):
        await store.record_hits("run", "fake", [hit(2 * page), hit(2 * page + 1)])
        await store.record_checkpoint("run", "fake", {"page": page + 1})
    await store.record_state("run", "fake", "done")


@pytest.mark.parametrize(("point", "state", "job", "checkpoint", "hits"), [
    ("intent", "submitting", None, None, []),
    ("submitted", "submitting", None, None, []),
    ("job", "submitted", JOB, None, []),
    ("checkpoint", "ready", JOB, {"page": 1}, ["r0", "r1", "r2", "r3"]),  # page 2's hits, not its checkpoint
])
async def test_the_store_keeps_what_was_written_before_the_crash_point_and_nothing_after(
        disk: Disk, point: CrashPoint, state: str, job: JobRef | None, checkpoint: dict[str, int] | None,
        hits: list[str]) -> None:
    store = CrashingStore(await disk.open(), disk, point, provider="fake", page=2)
    with pytest.raises(SimulatedCrash):
        await drive(store)
    assert store.crashed
    with pytest.raises(SimulatedCrash):  # a dead process writes nothing more (no final state, no outcome)
        await store.finish_run("run", "interrupted", None)

    durable = await disk.open()
    record = await durable.get("run", "fake")
    assert record is not None
    assert (record.idempotency_key, record.state, record.job, record.checkpoint) == ("key-1", state, job, checkpoint)
    assert [h.provider_record_id for h in await durable.hits("run", "fake")] == hits
    run = await durable.run("run")
    assert run is not None and run.status == "running"


async def test_a_killed_journal_loses_its_uncommitted_hits_and_checkpoints(tmp_path: Path) -> None:
    disk = SqliteDisk(tmp_path / "journal.sqlite")
    try:
        journal = await disk.open()
        await journal.record_run("run", REQUEST, NOW)
        await journal.record_submit_intent("run", "fake", "key-1", REQUEST)
        await journal.record_submitted("run", "fake", JOB)  # committed
        await journal.record_hits("run", "fake", [hit(0)])  # buffered
        await journal.record_checkpoint("run", "fake", {"page": 1})  # buffered
        await disk.kill(journal)

        reopened = await disk.open()
        record = await reopened.get("run", "fake")
        assert record is not None and (record.state, record.job, record.checkpoint) == ("submitted", JOB, None)
        assert await reopened.hits("run", "fake") == []
    finally:
        await disk.close()
