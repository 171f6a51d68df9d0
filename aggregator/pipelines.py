"""Strategies over providers: ``all`` (fan out), ``fallback`` (waterfall), ``race`` (hedged).

One declarative, nestable object decides how a run uses its providers::

    Policy(strategy="fallback", min_results=40,
           steps=("orbit", Policy(strategy="race", steps=("sixtyfour", "extruct"), hedge_delay_s=20)))

- ``all``: every step at once, under the run's deadline; a slow or failed step is reported in its
  outcome and never hides the others' results.
- ``fallback``: steps in order. A step is *passed over* on an error (optionally only the error
  classes in ``advance_on_errors``), on a timeout, or on too few results (fewer than
  ``min_results`` merged records so far; empty is too few). The chain stops once satisfied; each
  next step is asked only for what ``max_results`` still lacks. An error of a class outside
  ``advance_on_errors`` stops the chain. Outcome notes say who answered and why each earlier
  step was passed over. A step skipped because its provider's circuit breaker is open
  (:mod:`aggregator.breaker`: outcome ``skipped``, error ``CircuitOpenError``, nothing sent) is passed
  over at once whenever ``advance_on`` holds ``error`` or ``too_few``, whatever ``advance_on_errors`` says.
- ``race``: start the first step; start the next after ``hedge_delay_s`` (or at once when the
  running ones have all finished unsatisfied, as a step skipped for an open circuit has at once); the
  first to reach ``min_results`` wins, the rest are cancelled (their credits still count, their
  outcomes say so) and only the winner's records are returned.

Loadable from a mapping (a config file's ``[policies.NAME]`` table or a JSON/TOML file):
``{"strategy": "fallback", "min_results": 40, "steps": ["orbit", {"strategy": "race", ...}]}``.

A setting that cannot apply to its strategy is refused, never silently ignored (:data:`APPLIES_TO`,
:func:`refuse_inapplicable`, :meth:`Policy.check`): ``min_results`` means something only to
``fallback`` and ``race``, ``hedge_delay_s`` only to ``race``, ``advance_on`` / ``advance_on_errors``
only to ``fallback``; a race's steps are provider names (it hedges providers, not nested policies).
:meth:`aggregator.Aggregator.start` checks a request's own ``strategy`` fields and any policy given
before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field

from aggregator.errors import ConfigError
from aggregator.merge import merge_hits
from aggregator.models import Hit, Mode, ProviderOutcome, SearchRequest, Strategy

__all__ = [
    "APPLIES_TO",
    "Policy",
    "PolicyResult",
    "StepLauncher",
    "StepRun",
    "execute",
    "refuse_ignored_strategy_fields",
    "refuse_inapplicable",
]

Advance = Literal["error", "timeout", "too_few"]
Step = Union[str, "Policy"]

APPLIES_TO: dict[str, tuple[Strategy, ...]] = {
    "min_results": ("fallback", "race"),
    "hedge_delay_s": ("race",),
    "advance_on": ("fallback",),
    "advance_on_errors": ("fallback",),
}
"""The strategies each strategy setting means something to; under any other it would be ignored."""

_WHY_NOT = {"all": "every provider runs in full", "fallback": "providers run one after another, never hedged",
            "race": "a race is won by reaching min_results, no step is passed over"}


def refuse_inapplicable(strategy: Strategy, given: Iterable[str], prefix: str = "") -> None:
    """Refuse settings in ``given`` that ``strategy`` would ignore.

    Raises:
        ConfigError: naming the first such setting (``prefix`` + its name) and the strategies it applies to.
    """
    for name, strategies in APPLIES_TO.items():
        if name in given and strategy not in strategies:
            applies = " and ".join(repr(s) for s in strategies)
            plural = "strategies" if len(strategies) > 1 else "strategy"
            raise ConfigError(f"{prefix}{name}", f"applies only to the {applies} {plural}, not to {strategy!r} "
                                                 f"({_WHY_NOT[strategy]}); remove it or change the strategy")


class Policy(BaseModel):
    """How a run uses its providers (see the module docstring). Durations in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy = "all"
    steps: tuple[Step, ...] = Field((), description="Provider names or nested policies, in order.")
    min_results: int | None = Field(None, ge=1, description="Records that satisfy; None = at least one.")
    advance_on: frozenset[Advance] = Field(frozenset({"error", "timeout", "too_few"}),
                                           description="Fallback: what passes a step over.")
    advance_on_errors: tuple[str, ...] = Field(
        (), description="Fallback: error class names that pass a step over; empty = every error.")
    hedge_delay_s: float = Field(30.0, ge=0, description="Race: wait before starting the next step.")
    step_deadline_s: float | None = Field(
        None, gt=0, description="Each provider step's own deadline (within the run's); fallback default: "
                                "the run's deadline divided among the steps.")

    def providers(self) -> list[str]:
        """Every provider this policy may run, in order, without repeats."""
        names: list[str] = []
        for step in self.steps:
            for name in [step] if isinstance(step, str) else step.providers():
                if name not in names:
                    names.append(name)
        return names

    def check(self, prefix: str = "policy") -> None:
        """Refuse what this policy (or a nested one) would silently ignore: a setting given explicitly
        that its strategy does not use (:data:`APPLIES_TO`), or a nested policy as a race's step.

        Raises:
            ConfigError: located at the field, e.g. ``policy.steps[1].min_results``.
        """
        refuse_inapplicable(self.strategy, {n for n in self.model_fields_set if n in APPLIES_TO}, f"{prefix}.")
        for index, step in enumerate(self.steps):
            if isinstance(step, Policy):
                where = f"{prefix}.steps[{index}]"
                if self.strategy == "race":
                    raise ConfigError(where, "a race's steps must be provider names: it hedges providers, and a "
                                             "nested policy would never run; make the race a step of it instead")
                step.check(where)

    def with_steps(self, steps: Iterable[Step]) -> Policy:
        return self.model_copy(update={"steps": tuple(steps)})


def refuse_ignored_strategy_fields(request: SearchRequest, policy: Policy | None) -> None:
    """A new run's strategy settings must all apply: none beside a ``policy`` (it replaces the
    request's ``strategy``, ``min_results`` and ``hedge_delay_s``), and none its strategy ignores.

    Raises:
        ConfigError: naming the request field (``strategy``, ``min_results``, ``hedge_delay_s``).
    """
    given = [name for name in ("min_results", "hedge_delay_s") if getattr(request, name) is not None]
    if policy is not None:
        for name in (["strategy"] if request.strategy != "all" else []) + given:
            raise ConfigError(name, "a policy replaces the request's strategy, min_results and hedge_delay_s; "
                                    "set it in the policy instead")
        return
    refuse_inapplicable(request.strategy, given)


@dataclass
class StepRun:
    """One provider run started by a :class:`StepLauncher`; ``hits`` grows as records arrive."""

    provider: str
    task: asyncio.Task[ProviderOutcome]
    hits: list[Hit] = field(default_factory=list)
    progressed: asyncio.Event = field(default_factory=asyncio.Event)


class StepLauncher(Protocol):
    """Starts provider runs for a policy (the core implements it over its scheduler).

    ``scale`` is wall seconds per clock second (1.0 live; smaller on the time-scaled sandbox).
    """

    mode: Mode
    scale: float

    def remaining_s(self) -> float:
        """Clock seconds left until the run's deadline."""
        ...

    def launch(self, provider: str, max_results: int, deadline_s: float | None = None) -> StepRun: ...


@dataclass
class PolicyResult:
    """What a policy produced: every outcome (annotated) and the hits it keeps."""

    outcomes: list[ProviderOutcome] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    answered_by: list[str] = field(default_factory=list)

    def extend(self, other: PolicyResult) -> None:
        self.outcomes += other.outcomes
        self.hits += other.hits
        self.answered_by += [p for p in other.answered_by if p not in self.answered_by]


def _note(outcome: ProviderOutcome, note: str) -> ProviderOutcome:
    joined = f"{outcome.note}; {note}" if outcome.note else note
    return outcome.model_copy(update={"note": joined})


def _count(hits: list[Hit], mode: Mode) -> int:
    return len(merge_hits(hits, mode))


async def _run_step(step: Step, launcher: StepLauncher, max_results: int,
                    deadline_s: float | None = None) -> PolicyResult:
    if isinstance(step, Policy):
        return await execute(step, launcher, max_results)
    run = launcher.launch(step, max_results, deadline_s)
    outcome = await run.task
    delivered = outcome.status in ("found", "partial", "no_result")
    return PolicyResult([outcome], list(run.hits), [step] if delivered and run.hits else [])


async def execute(policy: Policy, launcher: StepLauncher, max_results: int) -> PolicyResult:
    """Run ``policy`` and return its outcomes and hits. Only cancellation propagates."""
    if policy.strategy == "fallback":
        return await _fallback(policy, launcher, max_results)
    if policy.strategy == "race":
        return await _race(policy, launcher, max_results)
    result = PolicyResult()
    steps = (_run_step(s, launcher, max_results, policy.step_deadline_s) for s in policy.steps)
    for part in await asyncio.gather(*steps):
        result.extend(part)
    return result


def _why_passed(policy: Policy, part: PolicyResult, total: int, needed: int) -> str | None:
    """Why a fallback step is passed over, None when the chain is satisfied, or 'stop: ...'."""
    errors = [o.error for o in part.outcomes if o.error is not None]
    if errors and not part.hits and all(o.status == "skipped" and o.error is not None
                                        and o.error.type == "CircuitOpenError" for o in part.outcomes):
        if policy.advance_on & {"error", "too_few"}:  # never asked: its provider is down
            return "circuit open"
        return "stop: circuit open"
    if errors and not part.hits:
        error = errors[0]
        if error.type == "DeadlineExceededError":
            return "timeout" if "timeout" in policy.advance_on else "stop: timed out"
        if "error" in policy.advance_on and (not policy.advance_on_errors or error.type in policy.advance_on_errors):
            return f"error {error.type}"
        return f"stop: {error.type} does not advance the chain"
    if total < needed:
        return f"too few results ({total} < {needed})" if "too_few" in policy.advance_on else "stop: too few"
    return None


async def _fallback(policy: Policy, launcher: StepLauncher, max_results: int) -> PolicyResult:
    result = PolicyResult()
    needed = policy.min_results or 1
    for index, step in enumerate(policy.steps):
        remaining = max_results - _count(result.hits, launcher.mode)
        share = policy.step_deadline_s or launcher.remaining_s() / (len(policy.steps) - index)
        part = await _run_step(step, launcher, max(remaining, 1), share)
        result.hits += part.hits
        reason = _why_passed(policy, part, _count(result.hits, launcher.mode), needed)
        last = index == len(policy.steps) - 1
        if reason is None or reason.startswith("stop") or last:
            label = "answered" if reason is None else (reason if reason.startswith("stop") else f"last step: {reason}")
            result.outcomes += [_note(o, f"fallback: {label}") for o in part.outcomes]
            result.answered_by += part.answered_by
            return result
        result.outcomes += [_note(o, f"fallback: passed over ({reason})") for o in part.outcomes]
        result.answered_by += part.answered_by
    return result


async def _race(policy: Policy, launcher: StepLauncher, max_results: int) -> PolicyResult:
    needed = policy.min_results or 1
    runs: list[StepRun] = []
    pending = [s for s in policy.steps if isinstance(s, str)]  # nested policies in a race are not hedged
    winner: StepRun | None = None
    while winner is None and (pending or any(not r.task.done() for r in runs)):
        if pending and (not runs or all(r.task.done() for r in runs)):
            runs.append(launcher.launch(pending.pop(0), max_results, policy.step_deadline_s))
            continue
        hedge_s = policy.hedge_delay_s * launcher.scale if pending else None
        winner = await _wait_for_winner(runs, needed, hedge_s)
        if winner is None and pending:
            runs.append(launcher.launch(pending.pop(0), max_results, policy.step_deadline_s))
    return await _settle_race(runs, winner, launcher.mode)


def _satisfied(run: StepRun, needed: int) -> bool:
    return len(run.hits) >= needed or (run.task.done() and not run.task.cancelled()
                                       and run.task.result().status == "found" and len(run.hits) >= needed)


async def _wait_for_winner(runs: list[StepRun], needed: int, hedge_s: float | None) -> StepRun | None:
    """The first run to satisfy, or None after ``hedge_s`` wall seconds / when every run ended."""
    loop = asyncio.get_running_loop()
    deadline = None if hedge_s is None else loop.time() + hedge_s
    while True:
        for run in runs:
            if _satisfied(run, needed):
                return run
        live = [r for r in runs if not r.task.done()]
        if not live:
            return None
        waits = [asyncio.ensure_future(r.progressed.wait()) for r in live] + [r.task for r in live]
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits[: len(live)]:
            waiter.cancel()
        for run in live:
            run.progressed.clear()
        if not done:
            return None


async def _settle_race(runs: list[StepRun], winner: StepRun | None, mode: Mode) -> PolicyResult:
    for run in runs:
        if run is not winner and not run.task.done():
            run.task.cancel()
    outcomes = list(await asyncio.gather(*(r.task for r in runs), return_exceptions=False))
    result = PolicyResult()
    for run, outcome in zip(runs, outcomes, strict=True):
        if winner is None:
            result.outcomes.append(_note(outcome, "race: no provider reached the goal"))
        elif run is winner:
            result.outcomes.append(_note(outcome, "race: won"))
        else:
            result.outcomes.append(_note(outcome, f"race: lost to {winner.provider}"))
    if winner is not None:
        result.hits, result.answered_by = list(winner.hits), [winner.provider]
    else:
        result.hits = [h for r in runs for h in r.hits]
        result.answered_by = [r.provider for r in runs if r.hits]
    return result
