"""Fault rules limited to a window of virtual time (the outage of the breaker benchmark)."""

from __future__ import annotations

import pytest

from providers.sandbox.faults import FaultInjector, FaultRule
from tests.fakes import FakeClock


def test_a_windowed_rule_fires_only_inside_its_window_and_counts_only_there() -> None:
    clock = FakeClock()
    rule = FaultRule("orbit", "*", "http_5xx", 1.0, active_from_s=10.0, active_until_s=20.0)
    injector = FaultInjector(1, (rule,), clock=clock)
    fired = []
    for t in (0.0, 9.99, 10.0, 15.0, 19.99, 20.0, 30.0):
        clock.t = t
        fired.append(injector.draw_http("orbit", "GET /v2/x") is not None)
    assert fired == [False, False, True, True, True, False, False]
    assert injector.fired() == [(rule, 3)]


def test_open_ended_windows_and_unwindowed_rules() -> None:
    clock = FakeClock()
    since = FaultRule("orbit", "*", "reset", 1.0, active_from_s=5.0)
    injector = FaultInjector(1, (since,))
    injector.bind_clock(clock)
    assert injector.draw_http("orbit", "GET /x") is None
    clock.t = 1e9
    assert injector.draw_http("orbit", "GET /x") is since
    always = FaultInjector(1, (FaultRule("orbit", "*", "reset", 1.0),))  # no clock needed
    assert always.draw_http("orbit", "GET /x") is not None


def test_a_window_needs_the_clock_and_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="active_until_s"):
        FaultRule("orbit", active_from_s=20.0, active_until_s=10.0)
    unbound = FaultInjector(1, (FaultRule("orbit", "*", "reset", 1.0, active_until_s=5.0),))
    with pytest.raises(RuntimeError, match="sandbox clock"):
        unbound.draw_http("orbit", "GET /x")
    assert unbound.draw_http("sixtyfour", "GET /x") is None  # not matching: the clock is not read
