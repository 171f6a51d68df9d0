"""The emulators render two hard-world details through their own render paths (issue 20 follow-up):
Orbit's stale job-change record without a LinkedIn URL, and Sixtyfour's website on a renamed
company's old, redirecting domain; ground truth still places both hits."""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.identity import normalize_domain
from aggregator.models import Company, Hit, Person
from providers.orbit.emulator.index import profile_id_for
from providers.orbit.emulator.profiles import profile_payload
from providers.orbit.emulator.runs import Level
from providers.orbit.wire import ProfilePayload, hit_from_profile
from providers.sandbox.disagreements import DisagreementRates
from providers.sandbox.truth import true_id_of
from providers.sandbox.world import World, build_world
from providers.sixtyfour.emulator.documents import DocumentCache
from providers.sixtyfour.wire import company_from_source

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RATES = DisagreementRates(job_change=0.3, job_change_without_url=0.5, rebrand=0.3)  # many cases in a small world


def world() -> World:
    return build_world(7, 120, RATES)


def orbit_hit(w: World, true_id: str) -> Hit:
    person = w.person(true_id)
    payload = profile_payload(w, person, profile_id_for(w.seed, true_id), Level.FULL, verified=True)
    return hit_from_profile(ProfilePayload.model_validate(payload), rank=1, job_id="job", retrieved_at=NOW)


def test_orbits_stale_job_change_record_has_no_linkedin_url_and_truth_still_places_it() -> None:
    w = world()
    plan = w.disagreements
    without = sorted(pid for provider, pid in plan.without_linkedin if provider == "orbit")
    others = sorted(pid for pid in plan.kinds if "job_change" in plan.kinds[pid] and pid not in without
                    and w.person_view("orbit", w.person(pid)) != w.person(pid))
    assert len(without) >= 3 and others, (without, others)
    for pid in without:
        hit = orbit_hit(w, pid)
        assert isinstance(hit.entity, Person)
        assert hit.entity.linkedin_url is None
        assert "linkedin.com/in/" not in str(hit.raw)  # no section cites the profile
        assert hit.entity.company_name == w.company(plan.person("orbit", w.person(pid)).company_id).name  # stale
        assert true_id_of(hit, w) == pid
    hit = orbit_hit(w, others[0])  # a job change seen by Orbit with its URL keeps it
    assert isinstance(hit.entity, Person) and hit.entity.linkedin_url is not None


def test_sixtyfours_website_is_a_renamed_companys_old_redirecting_domain() -> None:
    w = world()
    plan = w.disagreements
    redirects = {cid: domain for (provider, cid), domain in plan.websites.items()
                 if provider == "sixtyfour" and w.visible("sixtyfour", cid)}
    assert redirects
    rows = DocumentCache(w, positions_missing_rate=0).get("company").by_id  # by LinkedIn slug
    for cid, old_domain in redirects.items():
        company = w.company(cid)
        assert "rebrand" in plan.kinds_of(cid) and old_domain != company.domain
        source = rows[w.company_view("sixtyfour", company).linkedin_slug].raw_source
        rendered = company_from_source(source)
        assert isinstance(rendered, Company)
        assert normalize_domain(rendered.website) == old_domain  # the old brand's site, which redirects
        assert rendered.domain == company.domain  # the domain is the new one
        hit = Hit.trusted(provider="sixtyfour", provider_record_id=cid, job_id="job", rank=1, entity=rendered,
                          raw={"raw_source": source}, retrieved_at=NOW)
        assert true_id_of(hit, w) == cid
    untouched = next(c for c in w.companies if not plan.kinds_of(c.true_id) and c.linkedin_slug in rows)
    assert normalize_domain(company_from_source(rows[untouched.linkedin_slug].raw_source).website) == untouched.domain
