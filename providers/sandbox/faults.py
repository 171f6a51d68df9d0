"""Fault injection rules and their deterministic draw (design §4 "Fault injection per endpoint").

A :class:`FaultRule` targets one provider and one route key (``"POST /search/query"``, i.e. the
HTTP method plus the aiohttp route template, e.g. ``"GET /search/status/{task_id}"``) or ``"*"``.
``"*"`` matches the provider's API routes only: sandbox-internal routes (``/_sandbox/...``,
``/_storage/...``) are hit only by rules that name them explicitly, so a blanket 5xx rule never
breaks the stats document or, unintentionally, signed downloads.

A rule fires either for exactly the first ``first_n`` matching calls or, when ``first_n`` is 0,
with probability ``rate`` drawn from a per-rule RNG seeded from the sandbox seed and the rule's
position, so a run is reproducible. A rule may also be limited to a window of virtual time
(``active_from_s`` / ``active_until_s``, seconds of the sandbox clock's ``monotonic()``, read from the
clock given to the injector, :meth:`FaultInjector.bind_clock`): outside it the rule neither fires nor
counts the call (an outage that starts and ends). Rules are checked in insertion order; the first that
fires wins. The HTTP side of each kind is applied by the shared middleware (``server.py``); the
``job_failure`` kind is consulted by emulators when they start a job (:meth:`FaultInjector.job_fails`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aggregator.clock import Clock

__all__ = ["FaultInjector", "FaultKind", "FaultRule"]

FaultKind = Literal["http_5xx", "http_429", "reset", "slow", "malformed_json", "job_failure"]
HTTP_KINDS: frozenset[str] = frozenset(
    {"http_5xx", "http_429", "reset", "slow", "malformed_json"}
)


@dataclass(frozen=True)
class FaultRule:
    """One fault to inject.

    Attributes:
        provider: emulator the rule applies to, e.g. ``"sixtyfour"``.
        endpoint: route key (``"POST /search/query"``) or ``"*"`` for every API route.
        kind: ``http_5xx`` (status ``status``), ``http_429``, ``reset`` (connection aborted, the
            client sees a disconnect), ``slow`` (wait ``delay_s`` then answer normally),
            ``malformed_json`` (the handler runs, its body is truncated mid-JSON), or
            ``job_failure`` (a job started through this endpoint ends ``failed``).
        rate: probability per matching call, used when ``first_n`` is 0.
        first_n: fail exactly the first N matching calls (takes precedence over ``rate``).
        status: HTTP status for ``http_5xx``.
        retry_after_s: virtual seconds sent as ``Retry-After`` on 429/5xx; None sends none.
        delay_s: virtual seconds of delay for ``slow``.
        after_handler: for ``http_5xx``/``http_429``/``reset``: run the handler first (its side
            effects happen, e.g. a job starts) and then lose the response -- the case that
            idempotency keys exist for. ``malformed_json`` always runs the handler.
        active_from_s, active_until_s: the rule applies only while ``active_from_s <= t <
            active_until_s`` (either bound may be None), ``t`` the injector clock's ``monotonic()``
            in virtual seconds; None for both: always.

    Raises:
        ValueError: a window that ends before it starts.
    """

    provider: str
    endpoint: str = "*"
    kind: FaultKind = "http_5xx"
    rate: float = 0.0
    first_n: int = 0
    status: int = 503
    retry_after_s: float | None = 1.0
    delay_s: float = 0.0
    after_handler: bool = False
    active_from_s: float | None = None
    active_until_s: float | None = None

    def __post_init__(self) -> None:
        if (self.active_from_s is not None and self.active_until_s is not None
                and self.active_until_s <= self.active_from_s):
            raise ValueError(f"fault rule window: active_until_s ({self.active_until_s}) must be after "
                             f"active_from_s ({self.active_from_s})")

    @property
    def windowed(self) -> bool:
        """Whether the rule applies only during a window of time."""
        return self.active_from_s is not None or self.active_until_s is not None

    def active(self, now: float) -> bool:
        """Whether the rule applies at ``now`` (virtual seconds of the injector's clock)."""
        return ((self.active_from_s is None or now >= self.active_from_s)
                and (self.active_until_s is None or now < self.active_until_s))

    def matches(self, provider: str, route_key: str) -> bool:
        """Whether a call of ``route_key`` on ``provider`` is subject to this rule."""
        if self.provider != provider:
            return False
        if self.endpoint == "*":
            path = route_key.partition(" ")[2]
            return not path.startswith("/_")
        return self.endpoint == route_key


class _RuleState:
    def __init__(self, rule: FaultRule, seed: int, index: int) -> None:
        self.rule = rule
        self.matched = 0
        self.fired = 0
        self.rng = random.Random(f"fault:{seed}:{index}:{rule!r}")

    def fires(self) -> bool:
        self.matched += 1
        rule = self.rule
        hit = self.matched <= rule.first_n if rule.first_n > 0 else rule.rate > 0 and self.rng.random() < rule.rate
        self.fired += hit
        return hit


class FaultInjector:
    """The active fault rules of one sandbox, shared by all emulators.

    Args:
        seed: sandbox seed; each rule draws from its own RNG derived from it.
        rules: initial rules (more can be added at run time with :meth:`add`).
        clock: the sandbox clock that windowed rules are timed on (or :meth:`bind_clock` it later).
    """

    def __init__(self, seed: int, rules: tuple[FaultRule, ...] = (), clock: Clock | None = None) -> None:
        self._seed = seed
        self.clock = clock
        self._states: list[_RuleState] = []
        self._added = 0
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> None:
        """Activate ``rule`` (its ``first_n`` counts calls from now on)."""
        self._states.append(_RuleState(rule, self._seed, self._added))
        self._added += 1

    def bind_clock(self, clock: Clock) -> None:
        """Time windowed rules on ``clock`` (the sandbox's)."""
        self.clock = clock

    def clear(self) -> None:
        """Remove every rule."""
        self._states.clear()

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(state.rule for state in self._states)

    def fired(self) -> list[tuple[FaultRule, int]]:
        """Each active rule with the number of calls it has fired on so far, in insertion order."""
        return [(state.rule, state.fired) for state in self._states]

    def draw_http(self, provider: str, route_key: str) -> FaultRule | None:
        """The HTTP-level fault to apply to this call, if any (advances matching rules)."""
        return self._draw(provider, route_key, HTTP_KINDS)

    def job_fails(self, provider: str, route_key: str) -> bool:
        """Whether a job started by this call must end ``failed`` (a ``job_failure`` rule fired)."""
        return self._draw(provider, route_key, frozenset({"job_failure"})) is not None

    def _now(self) -> float:
        if self.clock is None:
            raise RuntimeError("a fault rule with a time window needs the sandbox clock: "
                               "FaultInjector(..., clock=) or bind_clock()")
        return self.clock.monotonic()

    def _draw(self, provider: str, route_key: str, kinds: frozenset[str]) -> FaultRule | None:
        for state in self._states:
            matched = state.rule.kind in kinds and state.rule.matches(provider, route_key)
            if matched and state.rule.windowed and not state.rule.active(self._now()):
                continue
            if matched and state.fires():
                return state.rule
        return None
