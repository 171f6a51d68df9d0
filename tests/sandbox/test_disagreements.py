"""The hard world (providers.sandbox.disagreements) and our resolver's quality on each of its kinds.

The per-kind floors come from ``deepsearch bench --only resolution --quick`` (seed 7, 300 companies,
the ``hard`` preset, 4,658 hits; measured 2026-12-06, after the improvements of issue 20). Pairwise
F1 per kind, ours / splink / ours before the improvements: job_change .946 / .872 / .808, nickname
.962 / .926 / .947, name_form .966 / .903 / .968, title_wording .991 / .902 / .982, namesake .953 /
.574 / .951, rebrand .870 / .000 / .762, subsidiary 1.0 / .960 / 1.0, cc_domain 1.0 / 1.0 / .000,
slug_history .952 / .952 / .842, untouched 1.0 / .985 / .997. Each floor sits a few points under the
measurement (a kind has a few dozen to a few hundred pairs: one more mistake may pass, a broken rule
may not); job_change, rebrand, cc_domain and slug_history scored below their floors before.
"""

from __future__ import annotations

import dataclasses

import pytest

from aggregator.bench.resolution import ResolutionBenchConfig, generate, resolve_ours
from aggregator.core import Aggregator
from aggregator.models import Person
from providers.sandbox.disagreements import KINDS, DisagreementRates
from providers.sandbox.runner import Sandbox, SandboxConfig
from providers.sandbox.truth import ClusterScores, evaluate, lookup, score_clusters, true_id_of
from providers.sandbox.world import _generate_world, build_world
from tests.conftest import FAST_SCALE, sandbox_settings

SMALL = 150

FLOORS: dict[str, tuple[float, float]] = {  # kind -> (pairwise F1 floor, pairwise precision floor)
    "job_change": (0.92, 0.95),  # the stale side without a URL is linked by name + city (MOVE)
    "nickname": (0.94, 0.98),
    "name_form": (0.94, 0.96),
    "title_wording": (0.97, 0.98),
    "namesake": (0.93, 0.90),  # a namesake seen by one provider only, without a key, is a guess
    "rebrand": (0.80, 0.99),  # many renames leave no shared identifier: out of any resolver's reach
    "subsidiary": (0.97, 0.99),
    "cc_domain": (0.95, 0.99),
    "slug_history": (0.90, 0.99),
    "none": (0.995, 0.999),
}


@pytest.fixture(scope="module")
def scores() -> dict[str, ClusterScores]:
    data = generate(ResolutionBenchConfig.quick())
    predicted, _ = resolve_ours(data.hits)
    return score_clusters(data.truth, predicted, data.kinds)


@pytest.mark.parametrize("kind", [*KINDS, "none"])
def test_our_resolver_on_each_disagreement_kind(scores: dict[str, ClusterScores], kind: str) -> None:
    found = scores[kind]
    f1_floor, precision_floor = FLOORS[kind]
    assert found.true_pairs >= 5, found  # the kind occurs: there is something to resolve
    assert found.f1 >= f1_floor, found
    assert found.precision >= precision_floor, found


def test_rates_of_zero_give_todays_world() -> None:
    plain = _generate_world(11, SMALL)
    zero = _generate_world(11, SMALL, DisagreementRates())
    assert zero.companies == plain.companies and zero.people == plain.people
    assert not zero.disagreements.kinds and not zero.disagreements.people
    assert build_world(7, SMALL, DisagreementRates()) is build_world(7, SMALL)


def test_the_hard_world_is_deterministic_and_labels_every_kind() -> None:
    first = _generate_world(11, SMALL, DisagreementRates.hard())
    second = _generate_world(11, SMALL, DisagreementRates.hard())
    assert first.companies == second.companies and first.people == second.people
    assert first.disagreements == second.disagreements
    labelled = {kind for kinds in first.disagreements.kinds.values() for kind in kinds}
    assert labelled == set(KINDS)
    other = _generate_world(12, SMALL, DisagreementRates.hard())
    assert other.disagreements.kinds != first.disagreements.kinds


def test_one_kind_at_a_time_touches_only_that_kind() -> None:
    for kind in KINDS:
        world = _generate_world(11, SMALL, DisagreementRates(**{kind: 0.5}))
        labelled = {k for kinds in world.disagreements.kinds.values() for k in kinds}
        assert labelled == {kind}, kind


def test_hard_world_truth_maps_every_alias_back() -> None:
    world = build_world(7, 300, DisagreementRates.hard())
    look = lookup(world)
    plan = world.disagreements
    assert plan.domain_aliases and plan.slug_aliases
    for domain, true_id in plan.domain_aliases.items():
        assert look.company_by_domain[domain] == true_id
    for slug, true_id in plan.slug_aliases.items():
        assert look.company_by_slug[slug] == true_id


def test_rates_are_checked() -> None:
    with pytest.raises(ValueError, match=r"disagreements\.nickname"):
        DisagreementRates(nickname=1.5)
    with pytest.raises(ValueError, match="unknown disagreement kind"):
        DisagreementRates.parse({"typo": 0.1})
    assert DisagreementRates.parse("hard") == DisagreementRates.hard()
    assert DisagreementRates.parse("none") == DisagreementRates() == DisagreementRates.parse(None)
    assert DisagreementRates.parse({"rebrand": 0.2}) == dataclasses.replace(DisagreementRates(), rebrand=0.2)
    assert not DisagreementRates().active and DisagreementRates.hard().active


def test_score_clusters_counts_pairs_touching_a_kind() -> None:
    truth = ["a", "a", "b", "b", "c"]
    predicted = ["1", "1", "1", "2", "3"]
    labels = {"a": ("x",), "b": (), "c": ("x",)}
    out = score_clusters(truth, predicted, lambda t: labels[t])
    assert (out["all"].predicted_pairs, out["all"].true_pairs, out["all"].correct_pairs) == (3, 2, 1)
    assert (out["x"].predicted_pairs, out["x"].true_pairs, out["x"].correct_pairs) == (3, 1, 1)
    assert (out["none"].predicted_pairs, out["none"].true_pairs, out["none"].correct_pairs) == (2, 1, 0)
    assert out["x"].recall == 1.0 and out["none"].f1 == 0.0
    assert out["all"].b3_precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)  # per hit: own / record
    with pytest.raises(ValueError):
        score_clusters(truth, predicted[:2])


async def test_a_search_on_the_hard_world_renders_the_providers_views() -> None:
    """The emulators render each provider's view (``SandboxConfig.disagreements``); ground truth follows."""
    config = SandboxConfig(time_scale=FAST_SCALE, providers=("sixtyfour", "orbit"),
                           disagreements=DisagreementRates.hard())
    async with Sandbox(config) as sandbox, Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        world = sandbox.world
        report = await agg.search("VP of Engineering at Series B SaaS startups in New York", mode="people",
                                  max_results=100, providers=("sixtyfour", "orbit"))
        hits = [hit for record in report.records for hit in record.hits]
        scores = evaluate(hits, report.records, world)
        assert scores.unresolved_hits == 0 and scores.true_pairs > 10
        assert scores.precision >= 0.95 and scores.recall >= 0.9, (scores.mixed_records, scores.split_entities)
        views = world.disagreements.people
        shown = [(h, key) for h in hits if (key := (h.provider, true_id_of(h, world) or "")) in views]
        assert any(views[key].title != world.person(key[1]).title for _, key in shown)  # some hits disagree...
        for hit, key in shown:  # ...rendered as that view
            assert isinstance(hit.entity, Person) and hit.entity.title == views[key].title
