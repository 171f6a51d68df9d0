"""A fourth provider is one package: registering ``tests/fourth_provider`` is all it takes to search,
compare, resolve its hits against the world's ground truth and run it on the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aggregator.compare import compare
from aggregator.core import Aggregator
from providers import REGISTRY, register, unregister
from providers.sandbox.runner import Sandbox, SandboxConfig
from providers.sandbox.truth import true_id_of
from tests.conftest import FAST_SCALE, sandbox_settings
from tests.fourth_provider import SPEC

QUERY = "VP of Engineering in New York"


@pytest.fixture
def acme() -> Iterator[None]:
    register(SPEC)
    try:
        yield
    finally:
        unregister(SPEC.name)
    assert "acme" not in REGISTRY


async def test_a_registered_fourth_provider_searches_and_compares_beside_the_others(acme: None) -> None:
    config = SandboxConfig(time_scale=FAST_SCALE, n_companies=1000, providers=("sixtyfour", "acme"))
    async with Sandbox(config) as sandbox, Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        report = await agg.search(QUERY, mode="people", max_results=15, providers=("acme", "sixtyfour"))
        starts = sandbox.requests("acme", "POST /v1/searches")
        world = sandbox.world

    outcome = report.outcome("acme")
    assert outcome.status == "found" and outcome.records == 15
    assert len(starts) == 1 and starts[0].json()["query"] == QUERY
    acme_hits = [h for r in report.records for h in r.hits if h.provider == "acme"]
    assert acme_hits
    # its hits are people of the world with the asked title (ground truth through its spec's truth function)
    truths = {true_id_of(h, world) for h in acme_hits}
    assert None not in truths
    assert {p.title for p in world.people if p.true_id in truths} == {"VP of Engineering"}
    comparison = compare(report)
    assert {row.provider for row in comparison.providers} == {"acme", "sixtyfour"}


async def test_its_settings_come_from_its_spec_and_it_runs_on_the_default_sandbox(acme: None) -> None:
    async with Aggregator(sandbox_settings({"sandbox": {"time_scale": FAST_SCALE, "n_companies": 200}})) as agg:
        assert agg.settings.providers["acme"].api_key_env == "ACME_API_KEY"
        report = await agg.search(QUERY, providers=("acme",), max_results=5)
    assert report.outcome("acme").status in ("found", "no_result")
    assert report.outcome("acme").error is None
