"""Orbit people searches (candidate discovery) crashed at each durable step and resumed.

Orbit's start carries our key as ``requestId``; every profile read (1 credit) carries an
``Idempotency-Key`` derived from that key and the profile id, so a profile read again after a crash
is not charged again. Expected values come from the request log, the key the crashed process
journaled and the emulator's run (its candidates, in discovery order).

``FAST`` runs persist every candidate before the first poll: the run is complete when the client
first looks, and the candidates are read in batches of 5 (5 + 5 + the rest). ``STREAMING`` runs
persist a candidate every 40 s and are read while they run, a batch per poll.
"""

from __future__ import annotations

from collections import defaultdict

from aggregator.config import Settings
from aggregator.models import SearchRequest
from providers.sandbox.runner import Sandbox
from providers.sandbox.stats import RecordedRequest
from tests.conftest import sandbox_settings
from tests.resume.conftest import StartSandbox
from tests.resume.crash import Disk
from tests.resume.runs import Resumed, crash, crash_and_resume, resume

START = "POST /v2/developer/deep-search"
STATUS = "GET /v2/developer/deep-search/{requestId}"
PROFILE = "GET /v2/developer/profiles/{id}"
QUERY = "VP of Engineering at Series B SaaS startups in New York"
BATCH, MAX = 5, 30
FAST = {"sources_s": 0.0, "clustering_s": 0.0, "dispatch_s": 0.0, "candidate_interval_s": 0.01}
# a run of about 8 minutes (virtual): still going after the second batch, with a real second to spare at
# FAST_SCALE (at 10 s a candidate, 2 minutes, a loaded CI machine once saw it finish before the crash)
STREAMING = {"candidate_interval_s": 40.0}
START_PRICE = 10


def settings() -> Settings:
    return sandbox_settings({"providers": {"orbit": {"profile_batch": BATCH}}})


def search() -> SearchRequest:
    return SearchRequest(query=QUERY, mode="people", max_results=MAX, providers=("orbit",))


def profile_id(request: RecordedRequest) -> str:
    return request.path.rsplit("/", 1)[1]


def read_ids(requests: list[RecordedRequest]) -> list[str]:
    return [profile_id(r) for r in requests if r.route == PROFILE]


def candidates(sandbox: Sandbox, run: Resumed) -> list[str]:
    """The run's candidate profiles in discovery order (the emulator's run behind our requestId)."""
    (started,) = sandbox.emulator("orbit").list_runs()  # one run was ever started
    assert started.request_id == run.crashed.key
    ids = [pid for _, pid in started.candidates]
    assert BATCH < len(ids) < MAX  # more than a batch; fewer than asked for, so the run's end ends the reads
    return ids


def assert_start_body(request: RecordedRequest, key: str) -> None:
    body = request.json()
    assert body["requestId"] == key and body["runShape"] == "candidate_discovery"
    assert body["structuredIntent"]["experiences"][0]["title"] == "VP of Engineering"


def assert_read_keys_are_derived(run: Resumed) -> None:
    """Every read of a profile carries the same Idempotency-Key, before and after the crash; no two
    profiles share one."""
    keys: dict[str, set[str]] = defaultdict(set)
    for request in run.all(PROFILE):
        keys[profile_id(request)].add(request.headers["idempotency-key"])
    assert all(len(sent) == 1 for sent in keys.values()), keys
    assert len({key for sent in keys.values() for key in sent}) == len(keys)


def assert_every_candidate_once(sandbox: Sandbox, run: Resumed) -> None:
    """Every candidate read, stored and charged exactly once, and the outcome says so; the start charged once."""
    truth = candidates(sandbox, run)
    assert sorted(set(read_ids(run.all(PROFILE)))) == sorted(truth)  # no candidate skipped, none other read
    assert sorted(hit.provider_record_id for hit in run.hits) == sorted(truth)
    assert len(run.hits) == len(truth)
    outcome = run.report.outcome("orbit")
    assert (outcome.status, outcome.records, outcome.job_id) == ("found", len(truth), run.crashed.key)
    assert run.record.state == "done" and run.record.idempotency_key == run.crashed.key
    stats = sandbox.stats()["providers"]["orbit"]
    assert stats["jobs_started"] == 1
    assert stats["credits_charged"] == START_PRICE + len(truth)  # one start, one read per candidate
    assert stats["profile_reads"] == len(run.all(PROFILE))
    assert outcome.credits_remaining == sandbox.emulator("orbit").balance(1)
    assert outcome.credits == stats["credits_charged"]
    assert_read_keys_are_derived(run)


async def test_a_crash_after_the_intent_starts_once_with_the_journaled_request_id(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("orbit", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "intent")

    assert run.crashed.requests == []  # the key was journaled, nothing was sent
    assert (run.crashed.record.state, run.crashed.record.job) == ("submitting", None)
    (started,) = run.after(START)
    assert started.status == 202
    assert_start_body(started, run.crashed.key)
    ids = read_ids(run.requests)
    assert len(ids) == len(set(ids))  # each profile read once
    assert sandbox.stats()["providers"]["orbit"]["idempotent_replays"] == 0
    assert_every_candidate_once(sandbox, run)


async def test_a_crash_before_the_run_was_journaled_replays_the_start_and_pays_once(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("orbit", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "submitted")

    (first,) = run.before(START)  # the start reached Orbit (202, charged); its answer was lost
    assert first.status == 202 and run.crashed.record.job is None
    (again,) = run.after(START)
    assert again.status == 200 and again.body == first.body  # the same requestId: already_running
    assert_start_body(again, run.crashed.key)
    assert run.before(PROFILE) == []
    ids = read_ids(run.requests)
    assert len(ids) == len(set(ids))
    assert sandbox.stats()["providers"]["orbit"]["idempotent_replays"] == 1  # the start only
    assert_every_candidate_once(sandbox, run)


async def test_a_crash_after_the_run_was_journaled_polls_it_and_never_starts_again(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("orbit", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "job")

    (started,) = run.all(START)
    assert started in run.crashed.requests and started.status == 202
    assert_start_body(started, run.crashed.key)
    assert run.crashed.record.state == "submitted" and run.crashed.record.job is not None
    assert {r.path for r in run.after(STATUS)} == {f"/v2/developer/deep-search/{run.crashed.key}"}
    ids = read_ids(run.requests)
    assert len(ids) == len(set(ids))
    assert sandbox.stats()["providers"]["orbit"]["idempotent_replays"] == 0
    assert_every_candidate_once(sandbox, run)

async def test_a_crash_between_a_batchs_hits_and_its_checkpoint_rereads_that_batch_uncharged(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("orbit", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "checkpoint", page=2)

    before = read_ids(run.crashed.requests)
    first_batch, lost_batch = before[:BATCH], before[BATCH:]
    assert len(lost_batch) == BATCH  # two batches read; the second one's checkpoint was lost
    assert run.crashed.record.checkpoint is not None
    assert sorted(run.crashed.record.checkpoint["adapter"]["read"]) == sorted(first_batch)
    assert len(run.crashed.hits) == 2 * BATCH  # both batches' hits were journaled

    assert len(run.all(START)) == 1  # never started again
    after = read_ids(run.requests)
    assert sorted(after[:BATCH]) == sorted(lost_batch)  # the lost batch again (same keys: not charged)...
    assert not set(after[BATCH:]) & set(before)  # ...then only profiles never read
    assert sandbox.stats()["providers"]["orbit"]["idempotent_replays"] == BATCH
    assert_every_candidate_once(sandbox, run)


async def test_the_outcome_counts_the_credits_of_a_batch_whose_checkpoint_was_lost(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("orbit", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "checkpoint", page=2)

    assert run.report.outcome("orbit").credits == sandbox.stats()["providers"]["orbit"]["credits_charged"]


async def test_a_crash_while_the_run_streams_rereads_only_the_batch_whose_checkpoint_was_lost(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("orbit", STREAMING)  # profiles are read while the run goes on
    crashed = await crash(sandbox, disk, settings(), search(), "checkpoint", page=2)
    assert crashed.record.state == "submitted"  # not finished at Orbit when the process died
    run = await resume(sandbox, disk, settings(), crashed)

    before = read_ids(crashed.requests)
    assert crashed.record.checkpoint is not None
    journaled: list[str] = crashed.record.checkpoint["adapter"]["read"]
    lost = before[len(journaled):]
    assert sorted(before[:len(journaled)]) == sorted(journaled) and lost  # the journaled reads, then the lost batch
    assert sorted(hit.provider_record_id for hit in crashed.hits) == sorted(before)  # the lost batch's hits too

    after = read_ids(run.requests)
    assert len(after) == len(set(after))  # each profile read once by the resumed process:
    assert set(lost) <= set(after[:BATCH])  # the lost batch in its first batch (a batch's reads are concurrent)
    assert not set(after) & set(journaled)  # and no profile whose read was journaled
    assert run.after(START) == [] and len(run.after(STATUS)) >= 1  # polled, not started again
    assert sandbox.stats()["providers"]["orbit"]["idempotent_replays"] == len(lost)
    assert_every_candidate_once(sandbox, run)
