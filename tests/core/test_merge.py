"""Entity resolution on hand-made hits: normalizers, key tiers, fuzzy thresholds, provenance, incremental.

Pure tests (no I/O); the sandbox measurements live in ``tests/sandbox/test_resolution_quality.py``.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.identity import (
    normalize_company_name,
    normalize_country,
    normalize_email,
    normalize_person_name,
)
from aggregator.merge import Resolver, merge_hits, normalize_domain, normalize_linkedin_url, record_key
from aggregator.models import Company, Hit, MergedRecord, Person
from aggregator.resolution import COMPANY_NAME_THRESHOLD, PERSON_NAME_THRESHOLD

T0 = datetime(2025, 6, 30, 12, tzinfo=UTC)
_ids = iter(range(10**9))


def person(provider: str = "sixtyfour", rank: int = 1, *, rid: str | None = None, at: datetime = T0,
           job: str | None = "job", **fields: Any) -> Hit:
    return Hit(provider=provider, provider_record_id=rid or f"p{next(_ids)}", job_id=job, rank=rank,
               entity=Person(**fields), retrieved_at=at)


def company(provider: str = "sixtyfour", rank: int = 1, *, rid: str | None = None, at: datetime = T0,
            job: str | None = "job", **fields: Any) -> Hit:
    return Hit(provider=provider, provider_record_id=rid or f"c{next(_ids)}", job_id=job, rank=rank,
               entity=Company(**fields), retrieved_at=at)


def groups(records: tuple[MergedRecord, ...]) -> set[frozenset[str]]:
    """Records as sets of provider record ids (order-free, for comparing clusterings)."""
    return {frozenset(h.provider_record_id for h in r.hits) for r in records}


def together(records: tuple[MergedRecord, ...], *hits: Hit) -> bool:
    return frozenset(h.provider_record_id for h in hits) in groups(records)


# -- normalizers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "https://www.linkedin.com/in/jane-doe",
    "http://www.linkedin.com/in/jane-doe",
    "https://linkedin.com/in/jane-doe",
    "linkedin.com/in/jane-doe",
    "https://uk.linkedin.com/in/jane-doe",
    "https://m.linkedin.com/in/jane-doe",
    "https://www.linkedin.com/in/Jane-Doe/",
    "https://www.linkedin.com/in/jane-doe?trk=public_profile",
    "https://www.linkedin.com/in/jane-doe#experience",
    "https://www.linkedin.com/in/jane-doe/details/experience/",
    "  https://WWW.LINKEDIN.COM/IN/JANE-DOE  ",
])
def test_linkedin_profile_variants_normalize_to_one_url(raw: str) -> None:
    assert normalize_linkedin_url(raw) == "https://www.linkedin.com/in/jane-doe"


def test_linkedin_normalization_keeps_the_kind_and_decodes_the_slug() -> None:
    assert normalize_linkedin_url("https://linkedin.com/company/acme-freight/") == (
        "https://www.linkedin.com/company/acme-freight")
    assert normalize_linkedin_url("https://de.linkedin.com/in/j%C3%BCrgen-m") == "https://www.linkedin.com/in/jürgen-m"


@pytest.mark.parametrize("raw", [None, "", "https://www.linkedin.com/feed/", "https://example.com/in/jane",
                                 "https://linkedin.com.evil.example/in/jane", "https://evil.example/linkedin.com/in/j"])
def test_non_linkedin_profile_urls_normalize_to_none(raw: str | None) -> None:
    assert normalize_linkedin_url(raw) is None


@pytest.mark.parametrize(("raw", "domain"), [
    ("www.acme.co.uk/about", "acme.co.uk"),
    ("https://www.Acme.com/", "acme.com"),
    ("http://acme.com", "acme.com"),
    ("acme.com", "acme.com"),
    ("https://app.eu.acme.io/login?x=1", "acme.io"),
    ("shop.acme.com.au", "acme.com.au"),
    ("https://user@www.acme.de:8443/x", "acme.de"),
    ("jane.doe@Acme.com", "acme.com"),
    ("acme.github.io", "acme.github.io"),  # a private suffix: two Pages sites are two domains
    ("WWW.ACME.COM.", "acme.com"),
    ("http://localhost:8080/", "localhost"),
])
def test_domains_normalize_to_the_registered_domain_offline(raw: str, domain: str) -> None:
    assert normalize_domain(raw) == domain


@pytest.mark.parametrize("raw", [None, "", "   ", "not a domain"])
def test_values_without_a_host_have_no_domain(raw: str | None) -> None:
    assert normalize_domain(raw) is None


@pytest.mark.parametrize("raw", ["Acme Freight, Inc.", "ACME Freight", "Acme Freight LLC", "Acme Freight GmbH",
                                 "Acme Freight Ltd", "Acme Freight Ltd.", "The Acme Freight Limited",
                                 "Acme Freight GmbH & Co. KG", "Acme Freight Pty Ltd", "Acme Freight B.V.",
                                 "Acme-Freight S.L.", "Acme Freight Corp.", "  acme   freight  "])
def test_company_names_lose_legal_forms_punctuation_and_case(raw: str) -> None:
    assert normalize_company_name(raw) == "acme freight"


def test_company_name_normalization_keeps_meaningful_words() -> None:
    assert normalize_company_name("Johnson & Johnson") == normalize_company_name("Johnson and Johnson")
    assert normalize_company_name("Acme Holdings Inc") == "acme holdings"
    assert normalize_company_name("Société Générale SA") == "societe generale"
    assert normalize_company_name("Inc.") == "inc"  # never empty


@pytest.mark.parametrize(("raw", "name"), [
    ("Jane Doe", "jane doe"), ("  JANE   doe ", "jane doe"), ("Jürgen Müller", "jurgen muller"),
    ("Dr. Jane Doe, PhD", "jane doe"), ("Jane A. Doe", "jane doe"), ("John Smith Jr.", "john smith"),
    ("Seán O'Neil-Smith", "sean oneil smith"),
])
def test_person_names_are_folded_without_titles_and_initials(raw: str, name: str) -> None:
    assert normalize_person_name(raw) == name


@pytest.mark.parametrize(("raw", "iso2"), [("US", "US"), ("us", "US"), ("United States", "US"), ("USA", "US"),
                                           ("U.S.", "US"), ("United Kingdom", "GB"), ("UK", "GB"),
                                           ("Deutschland", "DE"), ("Germany", "DE"), ("DE", "DE")])
def test_countries_map_to_iso2(raw: str, iso2: str) -> None:
    assert normalize_country(raw) == iso2


def test_emails_are_case_insensitive_and_must_look_like_addresses() -> None:
    assert normalize_email(" Jane.Doe@ACME.com ") == "jane.doe@acme.com"
    assert normalize_email("mailto:jane@acme.com") == "jane@acme.com"
    assert normalize_email("jane at acme") is None


# -- record keys --------------------------------------------------------------------------------

def test_record_key_is_the_strongest_key_of_an_entity() -> None:
    li = "https://uk.linkedin.com/in/Jane-Doe/"
    assert record_key(Person(linkedin_url=li, email="j@acme.com")) == "https://www.linkedin.com/in/jane-doe"
    assert record_key(Person(email="Jane@Acme.com", full_name="Jane Doe")) == "email:jane@acme.com"
    assert record_key(Person(full_name="Jane Doe", company_name="Acme, Inc.")) == "name:jane doe|acme"
    assert record_key(Company(website="https://www.acme.co.uk/x", linkedin_url="linkedin.com/company/acme")) == (
        "domain:acme.co.uk")
    assert record_key(Company(linkedin_url="linkedin.com/company/acme/")) == "https://www.linkedin.com/company/acme"
    assert record_key(Company(name="Acme GmbH", hq_country="Germany")) == "name:acme|DE"
    assert record_key(Person()) is None


# -- people tiers -------------------------------------------------------------------------------

def test_people_merge_on_linkedin_url_variants() -> None:
    a = person("sixtyfour", linkedin_url="https://www.linkedin.com/in/jane-doe", full_name="Jane Doe")
    b = person("orbit", linkedin_url="http://uk.linkedin.com/in/Jane-Doe/?trk=x", full_name="J. Doe")
    records = merge_hits([a, b], "people")
    assert len(records) == 1 and records[0].record_id == "https://www.linkedin.com/in/jane-doe"
    assert records[0].consensus == 2


def test_people_merge_on_email_case_insensitively() -> None:
    a = person("sixtyfour", email="Jane.Doe@Acme.com", full_name="Jane Doe")
    b = person("orbit", email="jane.doe@acme.com", full_name="Janie Doe-Smith")
    records = merge_hits([a, b], "people")
    assert [r.record_id for r in records] == ["email:jane.doe@acme.com"]


def test_people_merge_on_a_close_name_at_the_same_employer() -> None:
    a = person("sixtyfour", full_name="Jon Smith", company_name="Acme Freight, Inc.")
    b = person("orbit", full_name="John Smith", company_name="ACME Freight")
    c = person("orbit", 2, full_name="Smith, John", company_name="Acme Freight LLC")  # token order
    records = merge_hits([a, b, c], "people")
    assert len(records) == 1 and records[0].record_id == "name:john smith|acme freight"  # orbit sorts first


def test_the_same_name_at_another_company_is_another_person() -> None:
    a = person("sixtyfour", full_name="John Smith", company_name="Acme Freight")
    b = person("orbit", full_name="John Smith", company_name="Globex")
    assert len(merge_hits([a, b], "people")) == 2


def test_employers_compare_by_domain_when_both_sides_know_it() -> None:
    a = person("sixtyfour", full_name="Jane Doe", company_name="Acme", company_domain="acme.com")
    b = person("orbit", full_name="Jane Doe", company_name="Acme Labs", company_domain="https://www.acme.com/")
    c = person("extruct", full_name="Jane Doe", company_name="Acme", company_domain="acme.io")
    records = merge_hits([a, b, c], "people")
    assert together(records, a, b) and len(records) == 2


def test_person_name_threshold_both_sides() -> None:
    assert PERSON_NAME_THRESHOLD == 90
    close = [person("sixtyfour", full_name="Christina Steele", company_name="Acme"),  # 93.3: kept
             person("orbit", full_name="Christna Steele", company_name="Acme")]
    far = [person("sixtyfour", full_name="Elise Burton", company_name="Acme"),  # 87: apart
           person("orbit", full_name="Lisa Burton", company_name="Acme")]  # (Melissa would join: a nickname)
    assert len(merge_hits(close, "people")) == 1
    assert len(merge_hits(far, "people")) == 2


def test_a_name_match_never_joins_two_linkedin_profiles() -> None:
    a = person("sixtyfour", linkedin_url="linkedin.com/in/jane-doe-1", full_name="Jane Doe", company_name="Acme")
    b = person("orbit", linkedin_url="linkedin.com/in/jane-doe-2", full_name="Jane Doe", company_name="Acme")
    assert len(merge_hits([a, b], "people")) == 2


def test_an_email_never_joins_two_linkedin_profiles() -> None:
    a = person("sixtyfour", linkedin_url="linkedin.com/in/jane-doe-1", email="jane@acme.com")
    b = person("orbit", linkedin_url="linkedin.com/in/jane-doe-2", email="jane@acme.com")
    assert len(merge_hits([a, b], "people")) == 2


def test_a_keyless_namesake_joins_neither_of_two_profiles() -> None:
    a = person("sixtyfour", 1, linkedin_url="linkedin.com/in/jane-doe-1", full_name="Jane Doe", company_name="Acme")
    b = person("sixtyfour", 2, linkedin_url="linkedin.com/in/jane-doe-2", full_name="Jane Doe", company_name="Acme")
    c = person("orbit", 1, full_name="Jane Doe", company_name="Acme")
    records = merge_hits([a, b, c], "people")
    assert len(records) == 3  # which Jane Doe it is would be a guess (issue 20: namesakes)
    assert {r.record_id for r in records} == {"https://www.linkedin.com/in/jane-doe-1",
                                              "https://www.linkedin.com/in/jane-doe-2", "name:jane doe|acme"}
    for order in ([c, b, a], [b, c, a], [c, a, b]):
        assert groups(merge_hits(order, "people")) == groups(records)


def test_two_work_emails_at_one_domain_keep_namesakes_apart() -> None:
    a = person("sixtyfour", email="jane.doe@acme.com", full_name="Jane Doe", company_name="Acme")
    b = person("orbit", email="jane.doe2@acme.com", full_name="Jane Doe", company_name="Acme")
    c = person("extruct", email="jane@gmail.com", full_name="Jane Doe", company_name="Acme")
    records = merge_hits([a, b], "people")
    assert len(records) == 2
    assert len(merge_hits([a, c], "people")) == 1  # a personal address is no conflict


def test_the_same_provider_record_read_twice_is_one_entity() -> None:
    partial = person("orbit", 3, rid="orb_1", at=T0, full_name="Jane Doe")
    full = person("orbit", 3, rid="orb_1", at=T0 + timedelta(seconds=5), full_name="Jane Doe",
                  title="VP of Engineering")
    records = merge_hits([partial, full], "people")
    assert len(records) == 1 and records[0].consensus == 1
    assert records[0].hits[0] is full  # the newest read of one provider comes first


# -- company tiers ------------------------------------------------------------------------------

def test_companies_merge_on_the_registered_domain() -> None:
    a = company("sixtyfour", name="Acme Freight", domain="acmefreight.co.uk")
    b = company("extruct", name="Acme Freight Ltd", website="https://www.acmefreight.co.uk/about")
    c = company("extruct", 2, name="Something Else", website="shop.acmefreight.co.uk")
    records = merge_hits([a, b, c], "company")
    assert [r.record_id for r in records] == ["domain:acmefreight.co.uk"]


def test_companies_merge_on_the_linkedin_company_url() -> None:
    a = company("sixtyfour", name="Acme", linkedin_url="https://linkedin.com/company/acme/")
    b = company("extruct", name="Acme Corp", linkedin_url="https://www.linkedin.com/company/acme")
    records = merge_hits([a, b], "company")
    assert [r.record_id for r in records] == ["https://www.linkedin.com/company/acme"]


def test_companies_merge_on_legal_name_variants_in_one_country() -> None:
    a = company("sixtyfour", name="Acme Freight", hq_country_iso2="US")
    b = company("extruct", name="Acme Freight, Inc.", hq_country="United States")
    records = merge_hits([a, b], "company")
    assert len(records) == 1 and records[0].record_id == "name:acme freight|US"


def test_a_missing_country_matches_only_an_identical_name() -> None:
    a = company("sixtyfour", name="Acme Freight", hq_country_iso2="US")
    same = company("extruct", name="ACME Freight LLC")
    close = company("extruct", name="Acme Freights")
    assert len(merge_hits([a, same], "company")) == 1
    assert len(merge_hits([a, close], "company")) == 2


def test_company_name_threshold_both_sides() -> None:
    assert COMPANY_NAME_THRESHOLD == 90
    kept = [company("sixtyfour", name="Acme Freight", hq_country="US"),  # 91.7: a transposition
            company("extruct", name="Acme Frieght", hq_country="US")]
    spaced = [company("sixtyfour", name="BridgeCobalt", hq_country="US"),  # 96: spacing only
              company("extruct", name="Bridge Cobalt", hq_country="US")]
    apart = [company("sixtyfour", name="Acme Freight", hq_country="US"),  # 88: two edits
             company("extruct", name="Acme Frieghts", hq_country="US")]
    assert len(merge_hits(kept, "company")) == 1
    assert len(merge_hits(spaced, "company")) == 1
    assert len(merge_hits(apart, "company")) == 2


@pytest.mark.parametrize(("other", "country"), [("Acme Fright Lines", "United Kingdom"),
                                                ("Acme Fright Lines", "US"), ("Acme Freight", "GB")])
def test_near_miss_companies_do_not_merge(other: str, country: str) -> None:
    a = company("sixtyfour", name="Acme Freight", hq_country_iso2="US")
    b = company("extruct", name=other, hq_country=country)
    assert len(merge_hits([a, b], "company")) == 2


def test_word_order_matters_in_company_names() -> None:
    a = company("sixtyfour", name="Grove Mint", hq_country="US")
    b = company("extruct", name="Mint Grove", hq_country="US")
    assert len(merge_hits([a, b], "company")) == 2


def test_close_names_with_different_hq_cities_stay_apart() -> None:
    a = company("sixtyfour", name="Price Systems", hq_country="US", hq_city="New York")
    b = company("extruct", name="Rice Systems", hq_country="US", hq_city="Austin")
    c = company("extruct", 2, name="Price Systemz", hq_country="US", hq_city="New York City")
    records = merge_hits([a, b, c], "company")
    assert together(records, a, c) and len(records) == 2


def test_a_name_match_never_joins_two_domains_or_two_linkedin_pages() -> None:
    a = company("sixtyfour", name="Acme", domain="acme.com", hq_country="US")
    b = company("extruct", name="Acme", website="acme.io", hq_country="US")
    c = company("sixtyfour", 2, name="Acme", linkedin_url="linkedin.com/company/acme", hq_country="US")
    d = company("extruct", 2, name="Acme", linkedin_url="linkedin.com/company/acme-io", hq_country="US")
    assert len(merge_hits([a, b], "company")) == 2
    assert len(merge_hits([c, d], "company")) == 2


def test_a_linkedin_page_joins_two_domains_a_name_does_not() -> None:
    a = company("sixtyfour", domain="acme.com", linkedin_url="linkedin.com/company/acme")
    b = company("extruct", website="frostindigo.com", linkedin_url="linkedin.com/company/acme")  # renamed
    assert len(merge_hits([a, b], "company")) == 1  # issue 20: a rename keeps its LinkedIn page
    c = company("extruct", 2, name="Acme", website="acme.co.uk", hq_country="US")
    d = company("sixtyfour", 2, name="Acme", domain="acme.com", hq_country="US")
    assert len(merge_hits([c, d], "company")) == 2


def test_a_keyless_company_cannot_chain_two_countries_together() -> None:
    us = company("sixtyfour", 1, name="Acme", hq_country="US")
    gb = company("sixtyfour", 2, name="Acme", hq_country="GB")
    bare = company("extruct", 1, name="Acme Inc.")
    records = merge_hits([us, gb, bare], "company")
    assert len(records) == 3 and not together(records, us, gb)  # nor joins either: a guess


def test_people_and_companies_never_merge() -> None:
    hits = [person(full_name="Acme"), company(name="Acme")]
    assert len(merge_hits(hits, "people")) == 2


# -- records: provenance, conflicts, ordering ------------------------------------------------

def test_a_record_takes_each_field_from_the_best_hit_that_has_it() -> None:
    a = person("orbit", 1, linkedin_url="linkedin.com/in/jane", full_name="Jane Doe", title=None,
               location="New York, NY, US")
    b = person("sixtyfour", 2, linkedin_url="https://uk.linkedin.com/in/Jane/", full_name="jane  DOE",
               title="VP of Engineering", location="Greater New York City Area")
    (record,) = merge_hits([b, a], "people")
    entity = record.entity
    assert isinstance(entity, Person)
    assert (entity.full_name, entity.title, entity.location) == ("Jane Doe", "VP of Engineering", "New York, NY, US")
    assert entity.linkedin_url == "https://www.linkedin.com/in/jane"  # emitted normalized
    assert record.field_provenance["full_name"] == ("orbit", "sixtyfour")  # equal up to case/whitespace
    assert record.field_provenance["linkedin_url"] == ("orbit", "sixtyfour")
    assert record.field_provenance["title"] == ("sixtyfour",)
    assert record.field_provenance["location"] == ("orbit",)
    assert record.conflicts == {"location": {"sixtyfour": "Greater New York City Area"}}
    assert (record.providers, record.consensus, record.best_rank) == (("orbit", "sixtyfour"), 2, 1)
    assert [h.provider for h in record.hits] == ["orbit", "sixtyfour"]


def test_domains_urls_and_countries_agree_through_their_normalizers() -> None:
    a = company("sixtyfour", 1, name="Acme", domain="acme.com", website="https://www.acme.com",
                hq_country="United States", categories=("SaaS", "B2B"))
    b = company("extruct", 2, name="Acme Inc.", website="acme.com", hq_country="USA", categories=("saas", "b2b"))
    (record,) = merge_hits([a, b], "company")
    assert record.field_provenance["website"] == ("sixtyfour", "extruct")
    assert record.field_provenance["hq_country"] == ("sixtyfour", "extruct")
    assert record.field_provenance["categories"] == ("sixtyfour", "extruct")
    assert record.conflicts == {"name": {"extruct": "Acme Inc."}}


def test_within_a_provider_the_newest_read_wins() -> None:
    old = person("orbit", 2, rid="orb_1", at=T0, linkedin_url="linkedin.com/in/jane", title="Director")
    new = person("orbit", 2, rid="orb_1", at=T0 + timedelta(minutes=1), linkedin_url="linkedin.com/in/jane",
                 title="VP")
    (record,) = merge_hits([old, new], "people")
    assert isinstance(record.entity, Person) and record.entity.title == "VP"
    assert record.conflicts == {}  # one provider, one value: its best read


def test_records_are_ordered_by_consensus_then_best_rank_then_id() -> None:
    hits = [company("sixtyfour", 1, domain="solo-first.com"),
            company("sixtyfour", 5, domain="both.com"), company("extruct", 4, website="both.com"),
            company("sixtyfour", 2, domain="b.com"), company("extruct", 2, domain="a.com")]
    records = merge_hits(hits, "company")
    assert [r.record_id for r in records] == ["domain:both.com", "domain:solo-first.com", "domain:a.com",
                                              "domain:b.com"]
    assert [r.record_id for r in merge_hits(hits, "company", max_results=2)] == [
        "domain:both.com", "domain:solo-first.com"]


def test_a_hit_without_any_key_is_a_record_of_its_own() -> None:
    hits = [person("orbit", 1, rid="orb_9"), person("sixtyfour", 1, rid="row-1", title="CTO")]
    assert sorted(r.record_id for r in merge_hits(hits, "people")) == ["orbit:orb_9", "sixtyfour:row-1"]


# -- incremental ----------------------------------------------------------------------------------

def _mixed_people() -> list[Hit]:
    return [
        person("sixtyfour", 1, linkedin_url="linkedin.com/in/jane-doe", full_name="Jane Doe", company_name="Acme"),
        person("orbit", 2, linkedin_url="https://uk.linkedin.com/in/jane-doe/", full_name="Jane Doe"),
        person("orbit", 3, full_name="Jane Doe", company_name="Acme Inc."),
        person("extruct", 1, email="jd@acme.com", full_name="Jane  Doe", company_name="ACME"),
        person("sixtyfour", 2, linkedin_url="linkedin.com/in/jane-doe-2", full_name="Jane Doe",
               company_name="Acme"),
        person("sixtyfour", 3, full_name="John Roe", company_name="Globex", email="john@globex.com"),
        person("orbit", 4, full_name="Jon Roe", company_name="Globex Corporation"),
        person("orbit", 5, email="JOHN@globex.com"),
        person("extruct", 2, full_name="Mary Major", company_name="Initech"),
        person("extruct", 3),
    ]


def test_adding_hits_one_at_a_time_in_any_order_equals_adding_them_all() -> None:
    hits = _mixed_people()
    batch = merge_hits(hits, "people")
    for seed in range(25):
        shuffled = random.Random(seed).sample(hits, len(hits))
        resolver = Resolver("people")
        for hit in shuffled:
            resolver.add([hit])
        assert resolver.records() == batch, seed


def test_a_later_hit_joins_two_existing_records() -> None:
    resolver = Resolver("company")
    by_domain = company("sixtyfour", 1, rid="s1", domain="acme.com")
    by_page = company("extruct", 2, rid="e1", linkedin_url="linkedin.com/company/acme")
    assert [r.record_id for r in resolver.add([by_domain])] == ["domain:acme.com"]
    assert [r.record_id for r in resolver.add([by_page])] == ["https://www.linkedin.com/company/acme"]
    assert len(resolver.records()) == 2
    bridge = company("orbit", 3, rid="o1", domain="www.acme.com", linkedin_url="https://linkedin.com/company/acme/")
    changed = resolver.add([bridge])
    assert [r.record_id for r in changed] == ["domain:acme.com"]
    assert changed[0].consensus == 3 and {h.provider_record_id for h in changed[0].hits} == {"s1", "e1", "o1"}
    assert resolver.removed == ("https://www.linkedin.com/company/acme",)
    assert resolver.records() == changed and len(resolver) == 3


def test_add_returns_only_the_records_its_hits_created_or_changed() -> None:
    resolver = Resolver("people")
    resolver.add([person(linkedin_url="linkedin.com/in/a"), person(linkedin_url="linkedin.com/in/b")])
    changed = resolver.add([person("orbit", linkedin_url="linkedin.com/in/b", title="CTO")])
    assert [r.record_id for r in changed] == ["https://www.linkedin.com/in/b"] and resolver.removed == ()
    assert resolver.add([]) == ()
    assert [r.record_id for r in resolver.records()] == ["https://www.linkedin.com/in/b",
                                                         "https://www.linkedin.com/in/a"]


def test_record_ids_are_stable_for_the_same_input() -> None:
    hits = _mixed_people()
    first = [r.record_id for r in merge_hits(hits, "people")]
    assert first == [r.record_id for r in merge_hits(list(reversed(hits)), "people")]
    assert "https://www.linkedin.com/in/jane-doe" in first and "email:john@globex.com" in first


def _word(rng: random.Random, size: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(size)).capitalize()


def test_ten_thousand_hits_resolve_quickly() -> None:
    """A guard against quadratic blow-ups, not a benchmark: the bound is ~10x the measured time."""
    rng = random.Random(7)
    firsts = [_word(rng, 6) for _ in range(300)]
    employers = [f"{_word(rng, 7)} {_word(rng, 5)}" for _ in range(700)]
    hits = []
    for i in range(5000):
        name, employer = f"{rng.choice(firsts)} {_word(rng, 8)}", employers[i % 700]
        li = f"https://www.linkedin.com/in/p-{i}" if i % 3 else None
        hits.append(person("sixtyfour", i + 1, linkedin_url=li, full_name=name, company_name=employer))
        hits.append(person("orbit", i + 1, linkedin_url=li and li.replace("www.", "uk."), full_name=name,
                           company_name=employer + ", Inc."))
    started = time.process_time()
    records = merge_hits(hits, "people")
    elapsed = time.process_time() - started
    assert len(records) == 5000 and all(r.consensus == 2 for r in records)
    assert elapsed < 10.0
