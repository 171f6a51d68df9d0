"""The fault soak, short: every emulator misbehaves, nothing hangs, is lost, duplicated, paid twice or leaked.

The long soak is ``deepsearch soak --searches 500``; this one runs 24 searches per pass (~10 s).
The second half checks that the soak's checks do catch each kind of problem.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from aggregator.bench import soak as soak_module
from aggregator.bench.soak import DEADLINE_PASS_S, run_soak, soak, soak_queries
from aggregator.bench.soak_report import PassResult, ProviderRun, SearchRun, check_pass, check_reference
from providers.sandbox.runner import Sandbox

STARTS = {"sixtyfour": "POST /search/start-deep-search", "extruct": "POST /v1/discovery_tasks",
          "orbit": "POST /v2/developer/deep-search"}


def recording_sandboxes(monkeypatch: pytest.MonkeyPatch) -> list[Sandbox]:
    """Every Sandbox the soak starts, in order (one per pass), kept for reading its request log."""
    started: list[Sandbox] = []

    class Recorded(Sandbox):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(soak_module, "Sandbox", Recorded)
    return started


def starts_by_query(sandbox: Sandbox, provider: str) -> dict[str, list[dict[str, Any]]]:
    """The job-start requests ``provider`` received, body by body, grouped by the search they came from."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in sandbox.requests(provider, STARTS[provider]):
        body = request.json()
        if provider == "orbit":  # a structured intent: "<title> in <place>" is the soak's query
            intent = body["structuredIntent"]
            query = f"{intent['experiences'][0]['title']} in {intent['geo']['place']}"
        else:
            query = body["query"]
        grouped[query].append({**body, "_status": request.status})
    return grouped


async def test_a_short_soak_with_faults_loses_duplicates_pays_twice_and_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandboxes = recording_sandboxes(monkeypatch)
    report = await run_soak(24, fault_rate=0.08, seed=7, concurrency=12, n_companies=1500)

    assert report.ok, report.table()
    # Checked again from what the emulators received, not from the soak's own verdict:
    queries = soak_queries(24, seed=7)
    wanted = {"sixtyfour": {q.query for q in queries},
              "orbit": {q.query for q in queries if q.mode == "people"},
              "extruct": {q.query for q in queries if q.mode == "company"}}
    reference, faulty_box = sandboxes[0], sandboxes[1]
    for provider, searched in wanted.items():
        # the fault-free pass: one start per search of the provider's modes, each answered, each paid once
        clean = starts_by_query(reference, provider)
        assert set(clean) == searched and all(len(sent) == 1 for sent in clean.values()), provider
        assert all(sent[0]["_status"] in (200, 201, 202) for sent in clean.values()), provider
        assert reference.stats()["providers"][provider]["jobs_started"] == len(searched)
        # with faults: every search still asked for its job, never started two (a search pays once)
        sent = starts_by_query(faulty_box, provider)
        assert set(sent) == searched, provider
        assert faulty_box.stats()["providers"][provider]["jobs_started"] <= len(searched), provider
        for query, attempts in sent.items():
            if provider == "extruct":  # no idempotency key: a lost create is found by listing, not re-sent blindly
                # creates whose handler ran: answered, or lost after it (the soak's after-handler 5xx is a 502)
                assert sum(a["_status"] in (200, 201, 502) for a in attempts) <= 1, (query, attempts)
            else:  # every retry of a start carries the key minted once for the search
                key = "search_id" if provider == "sixtyfour" else "requestId"
                assert len({a[key] for a in attempts}) == 1, (query, attempts)
    assert any(len(a) > 1 for a in starts_by_query(faulty_box, "sixtyfour").values())  # starts were retried
    faulty = report.faulty
    for provider in ("sixtyfour", "extruct", "orbit"):
        assert sum(faulty.faults[provider].values()) > 0 and faulty.retries[provider] > 0
    kinds = {kind for per in faulty.faults.values() for kind, n in per.items() if n}
    assert {"http_5xx", "http_429", "reset", "slow", "malformed_json"} <= kinds
    assert any(kind.endswith("_after") for kind in kinds)  # a job started and its answer was lost
    assert set(faulty.search_status) <= {"found", "partial", "failed"}
    # every search whose start was answered has its job (a start that failed all its attempts has none; the
    # soak reports that search partial or failed, with its reason)
    answered = [q for q, attempts in starts_by_query(faulty_box, "sixtyfour").items()
                if any(a["_status"] in (200, 201, 202) for a in attempts)]
    assert len(answered) >= 20  # faults are a few percent per call: most starts go through
    assert faulty.records > 0 and faulty.jobs_started["sixtyfour"] >= len(answered)
    assert report.deadline is not None and report.deadline.deadline_s == DEADLINE_PASS_S
    assert "DeadlineExceededError" in " ".join(report.explained)  # searches were cut off...
    assert report.deadline.max_deadline_overrun_s <= report.deadline_tolerance_s  # ...at their deadline
    assert "PASS" in report.table()


def test_the_soak_command_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = CliRunner().invoke(soak, ["--searches", "2", "--fault-rate", "0.05", "--concurrency", "2",
                                       "--n-companies", "300", "--no-deadline-pass", "--json", str(out)])

    assert result.exit_code == 0, result.output
    assert "faulty pass: 2 searches" in result.output and "PASS" in result.output
    assert "Circuit breakers: a provider outage" in result.output  # the outage pass, at its quick sizes
    doc = orjson.loads(out.read_bytes())
    assert doc["ok"] is True and doc["faulty"]["searches"] == 2 and doc["problems"] == []
    assert doc["deadline"] is None
    outage = {m["name"]: m for m in doc["outage"]["metrics"]}
    assert doc["outage"]["passed"] is True
    assert outage["circuit opened, after the outage began (virtual)"]["passed"] is True
    assert outage["circuit closed, after the outage ended (virtual)"]["passed"] is True


def test_soak_queries_are_distinct_alternate_modes_and_depend_only_on_the_seed() -> None:
    queries = soak_queries(200, seed=3)

    assert len({q.query for q in queries}) == 200
    assert [q.mode for q in queries[:4]] == ["people", "company", "people", "company"]
    assert queries == soak_queries(200, seed=3) and queries != soak_queries(200, seed=4)
    with pytest.raises(ValueError, match="searches must be"):
        soak_queries(0, seed=3)


# -- the checks themselves ----------------------------------------------------------------
def search(index: int = 0, *, status: str = "found", elapsed_s: float = 100.0, **providers: ProviderRun) -> SearchRun:
    return SearchRun(index, f"query {index}", "people", 900.0, status=status, elapsed_s=elapsed_s,
                     providers=dict(providers), record_ids=[k for p in providers.values() for k in p.keys])


def prov(name: str, keys: list[str], *, status: str = "found", error: str | None = None,
         job_id: str | None = "job", submit_sent: bool = True) -> ProviderRun:
    return ProviderRun(name, status, job_id=job_id, submit_sent=submit_sent, error=error,
                       hit_ids=[f"id-{k}" for k in keys], keys=keys)


def result(*searches: SearchRun, started: int = 1, **extra: object) -> PassResult:
    stats = {"providers": {"orbit": {"jobs_started": started}}}
    return PassResult(searches=list(searches), stats=stats, faults={}, retries={}, wall_s=1.0, cpu_s=1.0,
                      **extra)  # type: ignore[arg-type]


REFERENCE = result(search(orbit=prov("orbit", ["a", "b", "c"])))


def problems_of(faulty: PassResult) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    explained: list[str] = []
    check_reference(REFERENCE, problems)
    check_pass(REFERENCE, faulty, tolerance_s=10.0, label="faulty", problems=problems, explained=explained)
    return problems, explained


def test_identical_passes_have_no_problem() -> None:
    assert problems_of(result(search(orbit=prov("orbit", ["c", "b", "a"])))) == ([], [])


@pytest.mark.parametrize(
    ("faulty", "expected"),
    [
        (result(search(orbit=prov("orbit", ["a", "b", "c", "a"]))), "delivered 1 record(s) twice"),
        (result(search(orbit=prov("orbit", ["a", "b"]))), "lost 1 of 3 record(s) although it ended found"),
        (result(search(orbit=prov("orbit", ["a", "b", "c", "z"]))), "the fault-free pass never returned"),
        (result(search(orbit=prov("orbit", ["a", "b", "c"])), started=2), "a paid start was duplicated"),
        (result(search(orbit=prov("orbit", ["a", "b", "c"])), started=0), "a paid start was duplicated or lost"),
        (result(search(status="hung", elapsed_s=0.0)), "hung past its deadline"),
        (result(search(elapsed_s=911.0, orbit=prov("orbit", ["a", "b", "c"]))), "past its 900 s deadline"),
        (result(search(orbit=prov("orbit", ["a"], status="partial"))), "ended partial without a reason"),
        (result(search(orbit=prov("orbit", ["a", "b", "c"])), leaked_tasks=["Task-9: poll()"]), "task left running"),
        (result(search(orbit=prov("orbit", ["a", "b", "c"])), unclosed_sessions=1), "session(s) left open"),
    ],
)
def test_each_kind_of_problem_is_reported(faulty: PassResult, expected: str) -> None:
    problems, _ = problems_of(faulty)

    assert any(expected in p for p in problems), problems


def test_a_provider_that_failed_with_a_reason_may_deliver_less_and_it_is_explained() -> None:
    failed = prov("orbit", ["a"], status="partial", error="RateLimitedError: retries exhausted")
    problems, explained = problems_of(result(search(orbit=failed)))

    assert problems == []
    assert explained == ["faulty: #0 people 'query 0' orbit: partial, 1/3 records (RateLimitedError: retries "
                         "exhausted)"]


def test_a_submit_cut_off_may_have_started_a_job_without_it_counting_as_a_duplicate() -> None:
    cut = prov("orbit", [], status="failed", error="DeadlineExceededError: cut", job_id=None, submit_sent=True)

    assert problems_of(result(search(orbit=cut), started=1))[0] == []
    assert problems_of(result(search(orbit=cut), started=2))[0] != []
