"""``[breaker]`` settings: defaults, per-provider overrides, and bad values refused naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.breaker import breaker_from_settings, policy_from_settings
from aggregator.config import load_settings
from aggregator.coordination import CircuitPolicy, InProcessCoordinator
from aggregator.errors import ConfigError
from tests.fakes import FakeClock


def refusal(overrides: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides=overrides)
    return info.value


def test_the_defaults_are_the_documented_ones() -> None:
    settings = load_settings(env={}).breaker
    assert settings.enabled
    assert policy_from_settings(settings) == CircuitPolicy(failures=8, failure_rate=0.5, window_s=60.0,
                                                           min_calls=20, cooldown_s=30.0)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"breaker": {"failures": 0}}, "breaker.failures"),
    ({"breaker": {"failure_rate": 1.5}}, "breaker.failure_rate"),
    ({"breaker": {"failure_rate": 0}}, "breaker.failure_rate"),
    ({"breaker": {"window_s": -1}}, "breaker.window_s"),
    ({"breaker": {"min_calls": 0}}, "breaker.min_calls"),
    ({"breaker": {"cooldown_s": 0}}, "breaker.cooldown_s"),
    ({"breaker": {"cooldown_s": float("inf")}}, "breaker.cooldown_s"),
    ({"breaker": {"enabled": "maybe"}}, "breaker.enabled"),
    ({"breaker": {"providers": {"orbit": {"cooldown_s": -5}}}}, "breaker.providers.orbit.cooldown_s"),
])
def test_bad_values_are_refused_naming_the_key(overrides: dict[str, Any], field: str) -> None:
    assert refusal(overrides).field == field


def test_unknown_keys_and_providers_are_refused_with_a_suggestion() -> None:
    error = refusal({"breaker": {"cooldown": 5}})
    assert error.field == "breaker.cooldown" and "cooldown_s" in str(error)
    error = refusal({"breaker": {"providers": {"orbitt": {"cooldown_s": 5}}}})
    assert error.field == "breaker.providers.orbitt" and "did you mean 'orbit'" in str(error)
    error = refusal({"breaker": {"providers": {"orbit": {"failure": 5}}}})
    assert error.field == "breaker.providers.orbit.failure" and "failures" in str(error)


def test_an_override_layers_over_the_section_for_its_provider_only() -> None:
    settings = load_settings(env={}, overrides={"breaker": {"failures": 5, "providers": {
        "orbit": {"cooldown_s": 120.0}, "extruct": {"enabled": False}}}}).breaker
    clock, coordinator = FakeClock(), InProcessCoordinator()
    orbit = breaker_from_settings(settings, "orbit", "orbit-a", coordinator, clock)
    sixtyfour = breaker_from_settings(settings, "sixtyfour", "sixtyfour-a", coordinator, clock)
    assert orbit is not None and orbit.policy.cooldown_s == 120.0 and orbit.policy.failures == 5
    assert sixtyfour is not None and sixtyfour.policy.cooldown_s == 30.0 and sixtyfour.policy.failures == 5
    assert breaker_from_settings(settings, "extruct", "extruct-a", coordinator, clock) is None
    assert breaker_from_settings(settings.model_copy(update={"enabled": False}), "orbit", "orbit-a", coordinator,
                                 clock) is None
