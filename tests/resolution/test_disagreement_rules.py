"""The resolver rules issue 20 added, one provider disagreement at a time, on hand-built hits.

Each test is the smallest case of one kind of the hard world (providers.sandbox.disagreements): what
must merge and what must stay apart.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aggregator.merge import merge_hits
from aggregator.models import Company, Hit, MergedRecord, Person

NOW = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def hit(provider: str, entity: Person | Company) -> Hit:
    return Hit(provider=provider, provider_record_id=f"r{next(_ids)}", job_id="j", rank=next(_ids),
               entity=entity, retrieved_at=NOW)


def person(name: str, employer: str, **more: str | None) -> Person:
    return Person(full_name=name, company_name=employer, **more)


def groups(records: tuple[MergedRecord, ...], hits: list[Hit]) -> list[list[int]]:
    """Each record as the sorted indexes of its hits in ``hits``."""
    index = {h.provider_record_id: n for n, h in enumerate(hits)}
    return sorted(sorted(index[h.provider_record_id] for h in r.hits) for r in records)


def test_job_change_with_the_same_linkedin_profile_stays_one_person() -> None:
    hits = [hit("sixtyfour", person("Ana Ruiz", "Northpeak", linkedin_url="https://www.linkedin.com/in/ana-ruiz-1")),
            hit("orbit", person("Ana Ruiz", "Old Harbor", linkedin_url="linkedin.com/in/ANA-RUIZ-1/",
                                email="ana.ruiz@oldharbor.com", city="Madrid"))]
    assert groups(merge_hits(hits, "people"), hits) == [[0, 1]]


def test_job_change_without_a_url_joins_by_name_and_city_unless_two_people_fit() -> None:
    keyed = hit("sixtyfour", person("Ana Ruiz", "Northpeak", city="Madrid",
                                    linkedin_url="https://www.linkedin.com/in/ana-ruiz-1"))
    stale = hit("orbit", person("Ana Ruiz", "Old Harbor", city="Madrid", email="ana.ruiz@oldharbor.com"))
    assert groups(merge_hits([keyed, stale], "people"), [keyed, stale]) == [[0, 1]]
    elsewhere = hit("orbit", person("Ana Ruiz", "Old Harbor", city="Lisbon"))
    assert groups(merge_hits([keyed, elsewhere], "people"), [keyed, elsewhere]) == [[0], [1]]
    namesake = hit("sixtyfour", person("Ana Ruiz", "Brightwave", city="Madrid",
                                       linkedin_url="https://www.linkedin.com/in/ana-ruiz-2"))
    hits = [keyed, stale, namesake]
    assert groups(merge_hits(hits, "people"), hits) == [[0], [1], [2]]  # which Ana moved is a guess


def test_nicknames_match_their_given_name_at_one_employer() -> None:
    hits = [hit("sixtyfour", person("Robert Hale", "Northpeak", linkedin_url="https://www.linkedin.com/in/rh-1")),
            hit("orbit", person("Bob Hale", "Northpeak")),
            hit("sixtyfour", person("Katherine Moss", "Northpeak", linkedin_url="https://www.linkedin.com/in/km-1")),
            hit("orbit", person("Kate Moss", "Northpeak")),
            hit("orbit", person("Tina Hale", "Northpeak")),  # not a nickname of Robert
            hit("sixtyfour", person("Chris Hale", "Northpeak", linkedin_url="https://www.linkedin.com/in/ch-1"))]
    assert groups(merge_hits(hits, "people"), hits) == [[0, 1], [2, 3], [4], [5]]


def test_name_forms_match() -> None:
    hits = [hit("sixtyfour", person("Jürgen Müller", "Northpeak", linkedin_url="https://www.linkedin.com/in/jm-1")),
            hit("orbit", person("MÜLLER Jürgen", "Northpeak")),
            hit("orbit", person("Jurgen K. Muller", "Northpeak")),
            hit("orbit", person("Juergen Mueller", "Northpeak"))]
    assert groups(merge_hits(hits, "people"), hits) == [[0, 1, 2, 3]]


def test_namesakes_at_one_company_stay_apart_and_a_keyless_third_joins_neither() -> None:
    hits = [hit("sixtyfour", person("Lee Park", "Northpeak", linkedin_url="https://www.linkedin.com/in/lee-park-1")),
            hit("sixtyfour", person("Lee Park", "Northpeak", linkedin_url="https://www.linkedin.com/in/lee-park-2")),
            hit("orbit", person("Lee Park", "Northpeak"))]
    assert groups(merge_hits(hits, "people"), hits) == [[0], [1], [2]]
    with_email = [*hits[:2], hit("orbit", person("Lee Park", "Northpeak", email="lee.park@northpeak.com")),
                  hit("orbit", person("Lee Park", "Northpeak", email="lee.park2@northpeak.com"))]
    assert groups(merge_hits(with_email, "people"), with_email) == [[0], [1], [2], [3]]


def test_a_rebrand_joins_through_the_linkedin_page_or_the_old_domain_redirect() -> None:
    page = "https://www.linkedin.com/company/coral-robotics"
    hits = [hit("sixtyfour", Company(name="Coral Robotics", domain="coralrobotics.com", linkedin_url=page)),
            hit("extruct", Company(name="Frostindigo, Inc.", website="www.frostindigo.com", linkedin_url=page)),
            hit("sixtyfour", Company(name="Miller Data", domain="millerdata.com", website="https://harborapex.com")),
            hit("extruct", Company(name="Harborapex", website="harborapex.com"))]
    assert groups(merge_hits(hits, "company"), hits) == [[0, 1], [2, 3]]


def test_country_code_domains_of_one_company_join_but_not_across_countries_or_names() -> None:
    hits = [hit("sixtyfour", Company(name="Beaconex", domain="beaconex.com", hq_country_iso2="FR",
                                     linkedin_url="https://www.linkedin.com/company/beaconex")),
            hit("extruct", Company(name="Beaconex SAS", website="https://beaconex.fr", hq_country="France",
                                   linkedin_url="https://www.linkedin.com/company/beaconex-group")),
            hit("extruct", Company(name="Beaconex GmbH", website="beaconex.de", hq_country="Germany")),
            hit("extruct", Company(name="Beacon Exchange", website="beaconex.co.uk", hq_country="France"))]
    assert groups(merge_hits(hits, "company"), hits) == [[0, 1], [2], [3]]


def test_a_subsidiary_is_not_its_parent() -> None:
    hits = [hit("sixtyfour", Company(name="Acme Freight", domain="acmefreight.com", hq_country_iso2="US",
                                     hq_city="Boston")),
            hit("extruct", Company(name="Acme Freight Labs, Inc.", hq_country="United States", hq_city="Boston")),
            hit("extruct", Company(name="Acme Freight, Inc.", hq_country="United States", hq_city="Boston"))]
    assert groups(merge_hits(hits, "company"), hits) == [[0, 2], [1]]


# -- rules from hits of sandbox searches (aggregator.bench.resolution, second source) --------------------

def test_a_renamed_companys_page_spelling_the_new_name_joins_the_new_name_in_its_city() -> None:
    """Sixtyfour still has the old name and domain, its LinkedIn page already the new name's slug;
    Extruct has the new name and domain and no page."""
    hits = [hit("sixtyfour", Company(name="Bridgecompass", domain="bridgecompass.com", hq_city="Mountain View",
                                     hq_country_iso2="US", linkedin_url="https://www.linkedin.com/company/silver-market")),
            hit("extruct", Company(name="Silver Market", website="https://silvermarket.com", hq_city="Mountain View",
                                   hq_country="United States")),
            hit("extruct", Company(name="Silver Market", website="https://silvermarket.de", hq_city="Berlin",
                                   hq_country="Germany"))]  # another city: not it
    assert groups(merge_hits(hits, "company"), hits) == [[0, 1], [2]]
    other = hit("extruct", Company(name="Silver Market", website="https://silver-market.io", hq_city="Mountain View",
                                   hq_country="United States"))  # two companies of the name there: a guess, none
    assert groups(merge_hits([*hits, other], "company"), [*hits, other]) == [[0], [1], [2], [3]]


def test_a_page_slug_spelling_its_own_name_is_no_rename() -> None:
    hits = [hit("sixtyfour", Company(name="Silver Market, Inc.", domain="silvermarket.com", hq_city="Austin",
                                     hq_country_iso2="US", linkedin_url="https://www.linkedin.com/company/silver-market")),
            hit("extruct", Company(name="Silver Market", website="https://silver-market.io", hq_city="Austin",
                                   hq_country="United States"))]  # same name and city, other domain: PLACE
    assert groups(merge_hits(hits, "company"), hits) == [[0], [1]]


def test_a_job_change_joins_across_a_metro_area_a_surname_first_form_and_a_nickname() -> None:
    keyed = [hit("sixtyfour", person("Jesus Maxwell", "Firio", location="Greater Los Angeles Area",
                                     linkedin_url="https://www.linkedin.com/in/jesus-maxwell-1")),
             hit("sixtyfour", person("Evan Martinez", "Onyxsilver", location="Miami, Florida, United States",
                                     linkedin_url="https://www.linkedin.com/in/evan-martinez-2")),
             hit("sixtyfour", person("Daniel Nixon", "Hawk Frost", location="Los Angeles, California, United States",
                                     linkedin_url="https://www.linkedin.com/in/daniel-nixon-3"))]
    stale = [hit("orbit", person("Jesus Maxwell", "Runeora", city="Los Angeles")),
             hit("orbit", person("MARTINEZ Evan", "Anderson Homes", city="Miami")),
             hit("orbit", person("Danny Nixon", "Rallypine", city="Los Angeles")),
             hit("orbit", person("Danny Nixon", "Elmwood", city="Boston"))]  # another city: another person
    hits = keyed + stale
    assert groups(merge_hits(hits, "people"), hits) == [[0, 3], [1, 4], [2, 5], [6]]
