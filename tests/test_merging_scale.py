"""Entity resolution over generated world hits: the merging benchmark's input and what it resolves to.

Correctness only (timings belong to ``deepsearch bench --only merging``): the generated hits are
deterministic and look like the providers' output, resolving them finds the world's entities, the
work per hit (fuzzy comparisons made) does not grow with the number of hits, and adding hits in
chunks gives the records adding them at once gives.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from aggregator.bench.merging import MergingConfig, generate_hits, run_merging
from aggregator.merge import Resolver, merge_hits
from aggregator.models import Company, Hit, Person
from aggregator.resolution import name_score
from providers.sandbox.world import build_world


def true_ids(hits: list[Hit]) -> dict[int, str]:
    """id(hit) -> the world entity it describes (record ids are slugs or ``<prefix>-<true id>``)."""
    world = build_world(7, 1000)
    by_slug = {c.linkedin_slug: c.true_id for c in world.companies}
    by_slug.update({p.linkedin_slug: p.true_id for p in world.people})
    return {id(h): h.provider_record_id.split("-", 1)[1] if h.provider in ("extruct", "orbit")
            else by_slug[h.provider_record_id] for h in hits}


def test_hits_are_deterministic_and_a_size_is_a_prefix_of_a_larger_one() -> None:
    small, large = generate_hits(500), generate_hits(2000)
    assert small == generate_hits(500) == large[:500]
    assert len(large) == 2000


def test_hits_look_like_every_providers_output_with_some_strong_keys_missing() -> None:
    hits = generate_hits(5000)
    assert {h.provider for h in hits} == {"sixtyfour", "extruct", "orbit"}
    people = [h.entity for h in hits if isinstance(h.entity, Person)]
    companies = [h.entity for h in hits if isinstance(h.entity, Company)]
    assert len(people) > 5 * len(companies) > 0
    keyless_people = sum(p.linkedin_url is None for p in people)
    keyless_companies = sum(c.website is None for c in companies)
    assert 0.02 * len(people) < keyless_people < 0.1 * len(people)
    assert 0.02 * len(companies) < keyless_companies < 0.1 * len(companies)
    with pytest.raises(ValueError):
        generate_hits(0)


def test_resolving_generated_hits_finds_the_world_entities() -> None:
    hits = generate_hits(6000)
    truth = true_ids(hits)
    records = merge_hits(hits, "people")
    assert sum(len(r.hits) for r in records) == len(hits)
    mixed = [r for r in records if len({truth[id(h)] for h in r.hits}) > 1]
    assert len(mixed) <= 0.002 * len(records)  # the world's deliberate near-namesakes, at most
    records_of: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for hit in record.hits:
            records_of[truth[id(hit)]].add(record.record_id)
    split = [entity for entity, ids in records_of.items() if len(ids) > 1]
    assert len(split) <= 0.01 * len(records_of)
    assert sum(r.consensus > 1 for r in records) > 0.3 * len(records)  # providers overlap: real merging


def test_fuzzy_comparisons_per_hit_do_not_grow_with_the_number_of_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [0]

    def counting(a: Any, b: Any) -> float:
        calls[0] += 1
        return name_score(a, b)

    monkeypatch.setattr("aggregator.merge.name_score", counting)
    per_hit = []
    for size in (2000, 8000):
        calls[0] = 0
        Resolver().add(generate_hits(size))
        per_hit.append(calls[0] / size)
    assert per_hit[1] <= 2 * per_hit[0] + 0.05, per_hit  # blocking: candidates stay few as hits grow


def test_adding_hits_in_chunks_gives_the_records_of_adding_them_at_once() -> None:
    hits = generate_hits(4000)
    at_once = merge_hits(hits, "people")
    resolver = Resolver()
    for start in range(0, len(hits), 700):
        resolver.add(hits[start:start + 700])
    assert resolver.records() == at_once


async def test_the_quick_benchmark_reports_every_size_and_the_ratio() -> None:
    result = await run_merging(MergingConfig.quick())
    sizes = result.details["sizes"]
    assert set(sizes) == {"1000", "4000"}
    for doc in sizes.values():
        assert doc["records"] >= 1 and doc["us_per_hit"] > 0
    ratio = result.metrics[-1]
    assert ratio.target == "<= 2" and ratio.value is not None and ratio.value >= 1
