"""`deepsearch bench --only resolution` (aggregator.bench.resolution) at a small size."""

from __future__ import annotations

import pytest

from aggregator.bench import resolution
from aggregator.bench.resolution import ResolutionBenchConfig, run_resolution
from providers.sandbox.disagreements import KINDS
from providers.sandbox.truth import true_id_of
from providers.sandbox.world import build_world

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


async def test_hits_from_sandbox_searches_cover_every_kind_each_hit_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second source: sandbox searches over the hard world, every provider hit once, labelled by truth."""
    monkeypatch.setattr(resolution, "splink_available", lambda: False)
    cfg = ResolutionBenchConfig(n_companies=120, searches=40)
    queries = resolution.search_queries(build_world(cfg.seed, cfg.n_companies, cfg.rates), cfg.searches)
    assert len(queries) == len(set(queries)) == 40 and {mode for _, mode in queries} == {"people", "company"}
    data = await resolution.search_hits(cfg)
    assert data.searches == 40 and data.unplaced == 0 and len(data.hits) == len(data.truth) > 100
    assert len({(h.provider, h.provider_record_id) for h in data.hits}) == len(data.hits)
    first, second = data.hits[:30], data.hits[20:50]  # two searches sharing ten hits, one under a new record id
    renamed = second[0].model_copy(update={"provider_record_id": "another-task-result"})
    hits, truth, unplaced = resolution.label_once([first, [renamed, *second[1:]]], data.world)
    assert hits == data.hits[:50] and truth == data.truth[:50] and unplaced == 0
    assert {h.provider for h in data.hits} == {"sixtyfour", "extruct", "orbit"}
    assert all(true_id_of(h, data.world) == t for h, t in zip(data.hits, data.truth, strict=True))
    touched = {kind for t in data.truth for kind in data.kinds(t)}
    assert touched == set(KINDS)  # the queries reach every disagreement kind
    again = await resolution.search_hits(cfg)
    assert [(h.provider, h.entity) for h in again.hits] == [(h.provider, h.entity) for h in data.hits]  # same hits
    assert again.truth == data.truth  # (Extruct's result ids are random per run)

    result = await run_resolution(cfg)
    searched = result.details["searches"]
    assert searched["searches"] == 40 and set(searched["scores"]) == {"ours"}
    assert searched["scores"]["ours"]["all"]["F1"] > 0.9 and searched["seconds_per_hit"]["ours"] > 0
    assert any(m.name == "searches: ours all: pairwise F1" for m in result.metrics)
    assert "sandbox searches" in result.notes[-1] and "rendered world" in result.notes[-2]


async def test_the_search_source_can_be_left_out() -> None:
    result = await run_resolution(ResolutionBenchConfig(n_companies=60, searches=0, splink=False))
    assert "searches" not in result.details and not any(m.name.startswith("searches:") for m in result.metrics)
    with pytest.raises(ValueError, match="searches"):
        ResolutionBenchConfig(searches=-1)
