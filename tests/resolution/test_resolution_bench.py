"""`deepsearch bench --only resolution` (aggregator.bench.resolution) at a small size."""

from __future__ import annotations

import pytest

from aggregator.bench import resolution
from aggregator.bench.resolution import ResolutionBenchConfig, run_resolution
from providers.sandbox.disagreements import KINDS

SMALL = ResolutionBenchConfig(n_companies=80)


async def test_the_bench_scores_our_resolver_per_kind_without_splink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolution, "splink_available", lambda: False)
    result = await run_resolution(SMALL)
    scores = result.details["scores"]
    assert set(scores) == {"ours"}
    assert {"all", "none"} <= set(scores["ours"]) <= {"all", "none", *KINDS}
    assert scores["ours"]["all"]["F1"] > 0.9 and result.details["seconds_per_hit"]["ours"] > 0
    assert any("splink is not installed" in note for note in result.notes)
    assert "kind" in result.notes[-1] and "ours" in result.notes[-1]


async def test_the_bench_runs_splink_side_by_side() -> None:
    pytest.importorskip("splink")
    result = await run_resolution(SMALL)
    scores = result.details["scores"]
    assert set(scores) == {"ours", "splink"}
    assert set(scores["splink"]) == set(scores["ours"])
    assert 0.5 < scores["splink"]["all"]["F1"] <= 1.0  # a trained model, not a degenerate one
    gate = next(m for m in result.metrics if m.name == "kinds where ours has the lower pairwise F1")
    assert gate.passed is not None
