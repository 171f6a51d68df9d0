"""Strategies over scripted provider runs: fallback reasons, remainders, nesting, race, all.

Every test runs on a :class:`~tests.fakes.VirtualTimeLoop` (``@virtual_time``): scripted
providers deliver after exact virtual delays and the race's hedge waits on the loop's (virtual)
timers, so timings are asserted exactly and a provider that is never cancelled ends its script
(late) instead of hanging the test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aggregator.models import ErrorInfo, Hit, Person, ProviderOutcome
from aggregator.pipelines import Policy, StepRun, execute
from tests.fakes import virtual_time

NOW = datetime(2026, 11, 21, tzinfo=UTC)
NEVER_S = 100_000.0  # a provider that would deliver only long after any test's end


def hits(provider: str, n: int, start: int = 0) -> list[Hit]:
    return [Hit(provider=provider, provider_record_id=f"{provider}-{i}", rank=i + 1, retrieved_at=NOW,
                entity=Person(full_name=f"P{i}", linkedin_url=f"https://www.linkedin.com/in/{provider}-{i}"))
            for i in range(start, start + n)]


@dataclass
class Script:
    """What one provider does: deliver ``n`` hits ``after_s`` virtual seconds after its launch, then end."""

    n: int = 0
    error: str | None = None
    after_s: float = 0.0
    credits: float = 10.0


@dataclass
class FakeLauncher:
    scripts: dict[str, Script]
    mode: Any = "people"
    scale: float = 1.0  # the loop's time is virtual: a 10 s hedge waits 10 virtual seconds
    launched: list[tuple[str, int, float | None]] = field(default_factory=list)
    launched_at: dict[str, float] = field(default_factory=dict)
    ended_at: dict[str, float] = field(default_factory=dict)
    runs: dict[str, StepRun] = field(default_factory=dict)

    def remaining_s(self) -> float:
        return 600.0

    def launch(self, provider: str, max_results: int, deadline_s: float | None = None) -> StepRun:
        self.launched.append((provider, max_results, deadline_s))
        self.launched_at[provider] = now()
        run = StepRun(provider=provider, task=None)  # type: ignore[arg-type]
        run.task = asyncio.create_task(self._play(run, self.scripts[provider], max_results))
        self.runs[provider] = run
        return run

    async def _play(self, run: StepRun, script: Script, max_results: int) -> ProviderOutcome:
        try:
            await asyncio.sleep(script.after_s)
            run.hits.extend(hits(run.provider, min(script.n, max_results)))
            run.progressed.set()
        except asyncio.CancelledError:
            self.ended_at[run.provider] = now()
            return ProviderOutcome(provider=run.provider, status="skipped", credits=script.credits, note="cancelled")
        self.ended_at[run.provider] = now()
        error = ErrorInfo(type=script.error, message=script.error) if script.error else None
        status = "failed" if error else ("found" if run.hits else "no_result")
        return ProviderOutcome(provider=run.provider, status=status, records=len(run.hits), error=error,
                               credits=script.credits)


def now() -> float:
    return asyncio.get_running_loop().time()


def notes(result: Any) -> dict[str, str]:
    return {o.provider: o.note or "" for o in result.outcomes}


@virtual_time
async def test_fallback_passes_over_errors_and_too_few_and_fills_the_remainder() -> None:
    launcher = FakeLauncher({"a": Script(error="ProviderServerError"), "b": Script(n=3), "c": Script(n=50)})
    result = await execute(Policy(strategy="fallback", steps=("a", "b", "c"), min_results=10), launcher, 40)

    assert [name for name, _, _ in launcher.launched] == ["a", "b", "c"]
    assert launcher.launched[2][1] == 37  # c is asked only for what is still missing
    assert "passed over (error ProviderServerError)" in notes(result)["a"]
    assert "passed over (too few results (3 < 10))" in notes(result)["b"]
    assert "fallback: answered" in notes(result)["c"]
    assert len(result.hits) == 3 + 37 and result.answered_by == ["b", "c"]


@virtual_time
async def test_fallback_stops_as_soon_as_it_is_satisfied() -> None:
    launcher = FakeLauncher({"a": Script(n=20), "b": Script(n=20)})
    result = await execute(Policy(strategy="fallback", steps=("a", "b"), min_results=10), launcher, 50)
    assert [name for name, _, _ in launcher.launched] == ["a"] and result.answered_by == ["a"]


@virtual_time
async def test_empty_counts_as_too_few() -> None:
    launcher = FakeLauncher({"a": Script(n=0), "b": Script(n=2)})
    result = await execute(Policy(strategy="fallback", steps=("a", "b")), launcher, 10)
    assert "too few results (0 < 1)" in notes(result)["a"] and result.answered_by == ["b"]


@virtual_time
async def test_an_error_outside_advance_on_errors_stops_the_chain() -> None:
    launcher = FakeLauncher({"a": Script(error="AuthError"), "b": Script(n=5)})
    policy = Policy(strategy="fallback", steps=("a", "b"), advance_on_errors=("RateLimitedError",))
    result = await execute(policy, launcher, 10)
    assert [name for name, _, _ in launcher.launched] == ["a"]
    assert "stop: AuthError does not advance the chain" in notes(result)["a"]


@virtual_time
async def test_a_timed_out_step_is_passed_over_and_each_step_gets_a_share_of_the_deadline() -> None:
    launcher = FakeLauncher({"a": Script(error="DeadlineExceededError"), "b": Script(n=5)})
    result = await execute(Policy(strategy="fallback", steps=("a", "b")), launcher, 10)
    assert "passed over (timeout)" in notes(result)["a"]
    assert [d for _, _, d in launcher.launched] == [300.0, 600.0]  # 600 s left over 2 steps, then 1


@virtual_time
async def test_policies_nest() -> None:
    launcher = FakeLauncher({"a": Script(n=1), "b": Script(n=30, after_s=NEVER_S), "c": Script(n=30, after_s=4)})
    inner = Policy(strategy="race", steps=("b", "c"), hedge_delay_s=10, min_results=10)
    result = await execute(Policy(strategy="fallback", steps=("a", inner), min_results=10), launcher, 40)
    assert result.answered_by == ["a", "c"]  # b was still running: c, hedged at 10 s, won at 14 s
    assert launcher.launched_at == {"a": 0.0, "b": 0.0, "c": 10.0}
    assert launcher.ended_at == {"a": 0.0, "b": 14.0, "c": 14.0} and now() == 14.0  # b cancelled at once
    assert ({o.provider: o.note for o in result.outcomes}["b"] or "").startswith("cancelled; race: lost to c")


@virtual_time
async def test_race_hedges_to_the_next_provider_and_cancels_the_loser() -> None:
    launcher = FakeLauncher({"a": Script(n=50, after_s=1000, credits=10), "b": Script(n=20, after_s=3, credits=12)})
    result = await execute(Policy(strategy="race", steps=("a", "b"), hedge_delay_s=10, min_results=5),
                           launcher, 50)
    assert result.answered_by == ["b"] and {h.provider for h in result.hits} == {"b"}
    assert launcher.launched_at == {"a": 0.0, "b": 10.0}  # hedged after exactly hedge_delay_s
    # the loser is cancelled the moment b wins (13 s), not left to finish its run (1000 s)
    assert launcher.ended_at == {"a": 13.0, "b": 13.0} and now() == 13.0
    by_provider = {o.provider: o for o in result.outcomes}
    assert by_provider["a"].status == "skipped" and by_provider["a"].records == 0
    assert "race: lost to b" in (by_provider["a"].note or "") and by_provider["a"].credits == 10  # still counted
    assert "race: won" in (by_provider["b"].note or "")


@virtual_time
async def test_race_does_not_start_the_next_provider_when_the_first_wins_in_time() -> None:
    launcher = FakeLauncher({"a": Script(n=10, after_s=9_999), "b": Script(n=10)})
    result = await execute(Policy(strategy="race", steps=("a", "b"), hedge_delay_s=10_000), launcher, 50)
    assert [name for name, _, _ in launcher.launched] == ["a"] and result.answered_by == ["a"]
    assert now() == 9_999.0


@virtual_time
async def test_race_moves_on_at_once_when_the_running_provider_fails() -> None:
    launcher = FakeLauncher({"a": Script(error="ProviderServerError"), "b": Script(n=3)})
    result = await execute(Policy(strategy="race", steps=("a", "b"), hedge_delay_s=10_000), launcher, 50)
    assert result.answered_by == ["b"]


@virtual_time
async def test_all_runs_every_step_and_keeps_failures_beside_results() -> None:
    launcher = FakeLauncher({"a": Script(error="ProviderTimeoutError"), "b": Script(n=4), "c": Script(n=2)})
    result = await execute(Policy(strategy="all", steps=("a", "b", "c")), launcher, 50)
    assert {o.provider: o.status for o in result.outcomes} == {"a": "failed", "b": "found", "c": "found"}
    assert len(result.hits) == 6


def test_policies_load_from_mappings_and_list_their_providers() -> None:
    policy = Policy.model_validate({"strategy": "fallback", "min_results": 40,
                                    "steps": ["orbit", {"strategy": "race", "steps": ["sixtyfour", "extruct"]}]})
    assert policy.providers() == ["orbit", "sixtyfour", "extruct"]
    assert isinstance(policy.steps[1], Policy) and policy.steps[1].strategy == "race"
