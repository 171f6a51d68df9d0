"""Behaviour of the sandbox's synthetic world: determinism, integrity, realism, coverage."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from providers.sandbox.world import World, _generate_world, build_world

SMALL = 150  # companies in the throw-away worlds used for determinism checks
SENIORITIES = {"CXO", "VP", "Director", "Head", "Manager", "Senior", "Entry", "Owner / Founder", "Partner"}


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()  # memoized: built once per test session


def test_same_seed_builds_identical_worlds() -> None:
    first = _generate_world(11, SMALL)
    second = _generate_world(11, SMALL)
    assert first is not second
    assert first.companies == second.companies
    assert first.people == second.people


def test_different_seeds_build_different_worlds() -> None:
    a = _generate_world(11, SMALL)
    b = _generate_world(12, SMALL)
    assert [c.name for c in a.companies] != [c.name for c in b.companies]
    assert [p.full_name for p in a.people] != [p.full_name for p in b.people]


def test_build_world_is_memoized_per_arguments(world: World) -> None:
    assert build_world() is world
    assert build_world(7) is world
    assert build_world(seed=7, n_companies=4000) is world


def test_default_world_has_4000_companies_and_about_eight_people_each(world: World) -> None:
    assert len(world.companies) == 4000
    assert 6 * 4000 <= len(world.people) <= 10 * 4000
    assert world.seed == 7


def test_ids_domains_slugs_and_emails_are_unique(world: World) -> None:
    for values in (
        [c.true_id for c in world.companies],
        [c.domain for c in world.companies],
        [c.linkedin_slug for c in world.companies],
        [c.linkedin_id for c in world.companies],
        [p.true_id for p in world.people],
        [p.linkedin_slug for p in world.people],
        [p.email for p in world.people],
        [p.github_username for p in world.people if p.github_username is not None],
    ):
        assert len(values) == len(set(values))


def test_every_person_works_at_and_previously_worked_at_existing_companies(world: World) -> None:
    for person in world.people:
        assert world.company(person.company_id).true_id == person.company_id
        assert person.company_id not in person.previous_company_ids
        for previous in person.previous_company_ids:
            world.company(previous)


def test_lookups_round_trip_and_unknown_ids_raise_key_error(world: World) -> None:
    company, person = world.companies[123], world.people[456]
    assert world.company(company.true_id) is company
    assert world.person(person.true_id) is person
    assert all(p.company_id == company.true_id for p in world.employees(company.true_id))
    assert sum(len(world.employees(c.true_id)) for c in world.companies) == len(world.people)
    for lookup in (world.company, world.person, world.employees):
        with pytest.raises(KeyError):
            lookup("nope_000000")


def test_company_mix_is_weighted_like_the_real_startup_scene(world: World) -> None:
    n = len(world.companies)
    cities = Counter(c.hq_city for c in world.companies)
    assert 0.15 <= cities["New York"] / n <= 0.18
    assert {"San Francisco", "London", "Berlin", "Bangalore", "Sydney"} <= set(cities)
    assert all(c.hq_state == "NY" for c in world.companies if c.hq_city == "New York")
    assert all(c.hq_state is None for c in world.companies if c.hq_country_iso2 not in ("US", "CA"))
    assert 0.30 <= sum(c.industry == "Software" for c in world.companies) / n <= 0.40
    assert 0.10 <= sum(c.funding_stage == "Series B" for c in world.companies) / n <= 0.14


def test_funding_rounds_are_chronological_and_end_at_the_stage(world: World) -> None:
    for c in world.companies:
        dates = [r.announced_date for r in c.funding_rounds]
        assert dates == sorted(dates)
        assert all(r.amount_usd > 0 for r in c.funding_rounds)
        if c.funding_stage == "Bootstrapped":
            assert c.funding_rounds == ()
        elif c.funding_stage == "Public":
            assert c.is_public and c.funding_rounds[-1].name == "IPO"
        else:
            assert not c.is_public and c.funding_rounds[-1].name == c.funding_stage
        assert all(int(d[:4]) >= c.founded_year for d in dates)


def test_startup_headcount_grows_with_stage(world: World) -> None:
    for c in world.companies:
        if c.funding_stage in ("Seed", "Series A", "Series B", "Series C"):
            assert 5 <= c.employees_count <= 500
    assert all(c.employees_count >= 800 for c in world.companies if c.is_public)


def test_nearly_every_company_over_30_employees_has_a_vp_of_engineering(world: World) -> None:
    big = [c for c in world.companies if c.employees_count > 30]
    with_vpe = [c for c in big if any(p.title == "VP of Engineering" for p in world.employees(c.true_id))]
    assert len(with_vpe) / len(big) >= 0.95


def test_every_company_has_a_ceo_and_titles_follow_the_org_vocabulary(world: World) -> None:
    assert all(any(p.title == "CEO" for p in world.employees(c.true_id)) for c in world.companies)
    assert {p.seniority for p in world.people} <= SENIORITIES
    vpe = [p for p in world.people if p.title == "VP of Engineering"]
    assert all(p.seniority == "VP" and p.job_function == "Engineering" for p in vpe)


def test_people_mostly_live_in_their_company_hq_city(world: World) -> None:
    at_hq = sum(p.city == world.company(p.company_id).hq_city for p in world.people)
    assert 0.8 <= at_hq / len(world.people) <= 0.92


def test_contact_fields_are_well_formed(world: World) -> None:
    for p in world.people:
        company = world.company(p.company_id)
        assert re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+\d*@" + re.escape(company.domain), p.email)
        assert re.fullmatch(r"\+[1-9]\d{9,13}", p.phone)
        assert re.fullmatch(r"[a-z0-9]+-[a-z0-9]+-\d{4,5}", p.linkedin_slug)
        assert company.name in p.headline
        assert p.full_name == f"{p.first_name} {p.last_name}"


def test_provider_visibility_is_deterministic_and_close_to_coverage(world: World) -> None:
    ids = [p.true_id for p in world.people]
    for provider, coverage in {"sixtyfour": 0.9, "extruct": 0.8, "orbit": 0.75}.items():  # the specs' coverage
        seen = [world.visible(provider, i) for i in ids]
        assert seen == [world.visible(provider, i) for i in ids]
        assert abs(sum(seen) / len(ids) - coverage) < 0.02
    assert all(world.visible("unknown-provider", i) for i in ids[:500])
    sixtyfour = [world.visible("sixtyfour", i) for i in ids]
    assert sixtyfour != [world.visible("extruct", i) for i in ids]
