"""Issue 14, items 1-3: exclusions hold for every provider, and structured fields reach every provider.

What the user asks for is done or refused before anything is paid for:

- ``exclude`` is sent where a provider accepts it (Sixtyfour ``exclude_entity_ids``, Extruct
  ``exclude_domains``), applied by the core to every provider's records before they are journaled or
  reported, and counted in the outcome; Orbit never pays a profile read for a candidate whose excluded
  profile id it knows before the read;
- structured fields reach Sixtyfour as a composed query text and Orbit as a ``structuredIntent``; the
  values of a repeatable field are any-of, and what Orbit's DSL cannot express (a second company or
  location) is refused before any call.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from aggregator.contract import Checkpoint, JobRef, Limits, Page, Ready
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.events import Event, HitsEvent, RecordsEvent, ReportEvent
from aggregator.exclusions import Exclusions, parse_exclusion
from aggregator.jobstore import InMemoryJobStore
from aggregator.limits import ProviderLimiter
from aggregator.models import Company, Hit, Person, PersonIdentity, SearchReport, SearchRequest
from aggregator.scheduler import JobRunner
from providers.sandbox.runner import Sandbox
from tests.core.test_scheduler import FakeAdapter as ScriptedAdapter
from tests.fakes import FakeClock

DEMO = "VP of Engineering at Series B SaaS startups in New York"
COMPANIES = "Series B SaaS companies in New York"
S64_START = "POST /search/start-deep-search"
S64_QUERY = "POST /search/query"
ORBIT_START = "POST /v2/developer/deep-search"
ORBIT_PROFILE = "GET /v2/developer/profiles/{id}"
EXTRUCT_CREATE = "POST /v1/discovery_tasks"


def sb(agg: Aggregator) -> Sandbox:
    return cast(Sandbox, agg.sandbox)


def bodies(agg: Aggregator, provider: str, route: str) -> list[Any]:
    return [request.json() for request in sb(agg).requests(provider, route)]


def calls(agg: Aggregator) -> int:
    """Requests every emulator of the sandbox received."""
    docs = sb(agg).stats()["providers"].values()
    return sum(ep["calls"] for doc in docs for ep in doc["endpoints"].values())


async def stream(agg: Aggregator, *args: Any, **fields: Any) -> tuple[SearchReport, list[Hit]]:
    """The report of a search and every hit it announced on the way."""
    announced: list[Hit] = []
    report = None
    async for event in agg.stream(*args, **fields):
        if isinstance(event, HitsEvent):
            announced.extend(event.hits)
        elif isinstance(event, RecordsEvent):
            announced.extend(hit for record in event.changed for hit in record.hits)
        elif isinstance(event, ReportEvent):
            report = event.report
    assert report is not None
    return report, announced


class FakeAdapter(ScriptedAdapter):
    """The scheduler tests' scripted adapter; ``skipped_unread`` records on each page it skipped unread."""

    skipped_unread = 0

    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        page = await super().fetch(job, checkpoint, limit)
        return dataclasses.replace(page, excluded=self.skipped_unread)


def runner(adapter: FakeAdapter, *, request: SearchRequest,
           store: InMemoryJobStore | None = None) -> tuple[JobRunner, list[Event], InMemoryJobStore]:
    clock = FakeClock()
    events: list[Event] = []
    store = store or InMemoryJobStore()
    job = JobRunner(run_id="run", adapter=adapter, request=request, limiter=ProviderLimiter("fake", Limits(), clock),
                    poll_policy=adapter.poll_policy_from(None), store=store, clock=clock,
                    deadline_at=clock.monotonic() + 1000.0, emit=events.append)
    return job, events, store


def linkedin_of(hit: Hit) -> str | None:
    return hit.entity.linkedin_url if isinstance(hit.entity, Person) else None


# -- item 1: exclusions --------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["url", "public_id"])
async def test_a_person_excluded_is_in_no_record_whichever_provider_found_them(
        make_aggregator: Any, form: str) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=1000)
    first = await agg.search(DEMO, max_results=50)
    both = next(r for r in first.records if set(r.providers) == {"sixtyfour", "orbit"})
    url = both.record_id  # https://www.linkedin.com/in/<slug>: the key the report gave them
    slug = url.rsplit("/", 1)[1]
    given = f"http://uk.linkedin.com/in/{slug.upper()}/" if form == "url" else slug

    report, announced = await stream(agg, DEMO, max_results=50, exclude=(given,))

    assert url not in {r.record_id for r in report.records}
    assert url not in {linkedin_of(h) for r in report.records for h in r.hits}
    assert url not in {linkedin_of(h) for h in announced}  # never announced either
    for provider in ("sixtyfour", "orbit"):  # nor journaled
        assert url not in {linkedin_of(h) for h in await agg.job_store.hits(report.run_id, provider)}
    orbit, sixtyfour = report.outcome("orbit"), report.outcome("sixtyfour")
    # Orbit takes no exclusions and knows a LinkedIn URL only from the profile: read, dropped, counted
    assert (orbit.exclusions_sent, orbit.excluded) == (0, 1)
    assert orbit.records == first.outcome("orbit").records - 1
    assert orbit.credits == 10 + orbit.records + orbit.excluded  # the dropped read was paid, and says so
    assert orbit.note is not None and "none sent" in orbit.note and "1 excluded" in orbit.note
    # Sixtyfour is sent the exclusion (start and first query page) and returns none of it
    assert (sixtyfour.exclusions_sent, sixtyfour.excluded) == (1, 0)
    assert bodies(agg, "sixtyfour", S64_START)[-1]["exclude_entity_ids"] == [given]
    first_pages = [b for b in bodies(agg, "sixtyfour", S64_QUERY) if "cursor" not in b]
    assert first_pages[-1]["exclude_entity_ids"] == [given]
    assert sixtyfour.note is not None and "1 of 1 sent to sixtyfour" in sixtyfour.note


async def test_orbit_pays_no_read_for_a_candidate_excluded_by_its_profile_id(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("orbit",), n_companies=1000)
    first = await agg.search(DEMO, max_results=5)
    excluded = first.records[0].hits[0].provider_record_id  # an Orbit profile id, orb_<hex>
    assert excluded.startswith("orb_")
    reads_before = len(sb(agg).requests("orbit", ORBIT_PROFILE))

    report = await agg.search(DEMO, max_results=5, exclude=(excluded,))

    reads = sb(agg).requests("orbit", ORBIT_PROFILE)[reads_before:]
    assert reads and excluded not in {r.path.rsplit("/", 1)[1] for r in reads}  # never read: no credit
    outcome = report.outcome("orbit")
    assert outcome.records == 5 and outcome.excluded == 1  # another candidate was read in its place
    assert outcome.credits == 10 + len(reads) == 10 + outcome.pages
    assert excluded not in {h.provider_record_id for r in report.records for h in r.hits}


async def test_a_lookup_that_finds_an_excluded_person_drops_them_and_skips_the_full_profile(
        make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("orbit",), n_companies=300)
    person = sb(agg).emulator("orbit").index.people[0]
    identity = PersonIdentity(email=person.email)  # the signal does not say who it is: the profile does

    report = await agg.search("lookup", identity=identity, exclude=(person.linkedin_slug,))

    outcome = report.outcome("orbit")
    assert report.records == () and (outcome.records, outcome.excluded) == (0, 1)
    assert len(sb(agg).requests("orbit", ORBIT_PROFILE)) == 1  # the partial profile; never the full one
    assert outcome.credits == 10 + 1


async def test_a_company_excluded_by_domain_is_absent_for_extruct_and_sixtyfour(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "extruct"), n_companies=1000)
    first = await agg.search(COMPANIES, mode="company", max_results=50)
    both = next(r for r in first.records if set(r.providers) == {"sixtyfour", "extruct"})
    domain = both.record_id.removeprefix("domain:")
    given = f"https://www.{domain.upper()}/about"

    report, announced = await stream(agg, COMPANIES, mode="company", max_results=50, exclude=(given,))

    def domain_of(hit: Hit) -> str | None:
        entity = hit.entity
        assert isinstance(entity, Company)
        return (entity.domain or entity.website or "").removeprefix("https://").removeprefix("www.") or None

    assert both.record_id not in {r.record_id for r in report.records}
    assert domain not in {domain_of(h) for h in announced}
    assert bodies(agg, "extruct", EXTRUCT_CREATE)[-1]["exclude_domains"] == [domain]  # its form: the domain
    assert bodies(agg, "sixtyfour", S64_START)[-1]["exclude_entity_ids"] == [given]
    for name in ("sixtyfour", "extruct"):
        assert report.outcome(name).exclusions_sent == 1 and report.outcome(name).status == "found"


async def test_the_core_drops_excluded_records_of_any_provider_before_journaling_and_counts_them() -> None:
    adapter = FakeAdapter([Ready()], [[1, 2], [3, 4, 5]])
    adapter.skipped_unread = 1  # an adapter that knew one excluded record before reading it
    request = SearchRequest(query="q", exclude=("https://www.linkedin.com/in/P2/", "r4"))
    job, events, store = runner(adapter, request=request)

    outcome = await job.run()

    announced = [h.provider_record_id for e in events if isinstance(e, HitsEvent) for h in e.hits]
    assert announced == ["r1", "r3", "r5"]
    assert [h.provider_record_id for h in await store.hits("run", "fake")] == ["r1", "r3", "r5"]
    assert (outcome.records, outcome.excluded, outcome.exclusions_sent) == (3, 2 + 2, 0)
    assert outcome.note == "exclusions: none sent (fake takes none of them); every record checked here, 4 excluded"
    record = store.records[("run", "fake")]
    assert record.checkpoint is not None and record.checkpoint["usage"]["excluded"] == 4

    resumed, _, _ = runner(FakeAdapter([Ready()], [[1, 2], [3, 4, 5]]), request=request, store=store)
    assert (await resumed.run()).excluded == 4  # a resumed run reports what its earlier process dropped


# -- items 2 and 3: structured fields ------------------------------------------------------------
async def test_structured_fields_reach_sixtyfour_as_text_and_orbit_as_an_intent(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=1000)
    world = sb(agg).world
    covered = sb(agg).emulator("orbit").index.people  # a CTO in San Francisco whom Orbit knows
    cto = next(p for p in covered if p.title == "CTO" and p.city == "San Francisco")
    company = world.company(cto.company_id).name

    report = await agg.search("x", titles=("CTO",), companies=(company,), locations=("San Francisco",))

    assert bodies(agg, "sixtyfour", S64_START)[-1]["query"] == f"CTO at {company} in San Francisco"
    assert bodies(agg, "orbit", ORBIT_START)[-1]["structuredIntent"] == {
        "version": "v1",
        "experiences": [{"title": "CTO", "temporalScope": "current", "titleAnyOf": ["CTO", "Chief Technology Officer"],
                         "organization": company}],
        "geo": {"place": "San Francisco"},
    }
    found = {h.entity.linkedin_url for r in report.records for h in r.hits if h.provider == "orbit"}
    assert f"https://www.linkedin.com/in/{cto.linkedin_slug}" in found

    # the placeholder query no longer stands in for the fields: Sixtyfour finds CTOs in San Francisco
    titled = await agg.search("x", titles=("CTO",), locations=("San Francisco",), providers=("sixtyfour",))
    by_slug = {p.linkedin_slug: p for p in world.people}
    truths = [by_slug[str(r.record_id).rsplit("/", 1)[1]] for r in titled.records]
    assert titled.outcome("sixtyfour").status == "found" and truths
    assert all(p.title == "CTO" and p.city == "San Francisco" for p in truths)


async def test_every_value_of_a_repeated_field_is_sent(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=1000)

    await agg.search("x", titles=("CTO", "CEO"), locations=("Berlin",), schools=("MIT", "Stanford University"))

    assert bodies(agg, "sixtyfour", S64_START)[-1]["query"] == (
        "CTO or CEO in Berlin who studied at MIT or Stanford University")
    intent = bodies(agg, "orbit", ORBIT_START)[-1]["structuredIntent"]
    assert intent["experiences"] == [{"title": "CTO", "temporalScope": "current", "titleAnyOf": [
        "CTO", "Chief Technology Officer", "CEO", "Chief Executive Officer"]}]
    assert intent["schools"] == [{"school": "MIT", "schoolAnyOf": ["MIT", "Stanford University"]}]


async def test_two_locations_reach_sixtyfour_and_orbit_which_cannot_express_them_is_skipped_unpaid(
        make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=1000)

    report = await agg.search("x", titles=("CTO",), locations=("Berlin", "Munich"), max_results=200)

    assert bodies(agg, "sixtyfour", S64_START)[-1]["query"] == "CTO in Berlin or Munich"
    by_slug = {p.linkedin_slug: p for p in sb(agg).world.people}
    cities = {by_slug[r.record_id.rsplit("/", 1)[1]].city for r in report.records}
    assert cities == {"Berlin", "Munich"}  # any of the places
    orbit = report.outcome("orbit")
    assert orbit.status == "skipped" and orbit.note is not None and "locations" in orbit.note
    assert sb(agg).requests("orbit") == []  # nothing sent, nothing paid

    with pytest.raises(ConfigError) as info:  # named: the request is refused, naming the field
        await agg.search("x", locations=("Berlin", "Munich"), providers=("orbit",))
    assert info.value.field == "locations" and "geo.place" in str(info.value)
    assert sb(agg).requests("orbit") == []


async def test_a_query_and_fields_together_the_fields_refine_the_query(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=600)
    request = SearchRequest(query="VP of Engineering at Series B SaaS startups in New York", locations=("Boston",))

    explained = {name: agg.adapter(name).describe(request) for name in ("sixtyfour", "orbit")}

    assert explained["sixtyfour"]["query"] == f"{request.query}, in Boston"
    intent = explained["orbit"]["structuredIntent"]
    assert intent["geo"] == {"place": "Boston"}  # the field replaces the query's place
    assert intent["experiences"][0]["title"] == "VP of Engineering"  # the rest of the query still applies
    assert intent["semanticClauses"] == [{"text": "Series B SaaS startups"}]


# -- --explain ------------------------------------------------------------------------------------
async def test_describe_shows_what_each_provider_is_sent_and_what_we_apply(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "extruct", "orbit"), n_companies=300)
    people = SearchRequest(query="x", titles=("CTO",), locations=("Austin",),
                           exclude=("https://www.linkedin.com/in/jane-doe", "orb_0123456789ab"))
    companies = SearchRequest(query=COMPANIES, mode="company",
                              exclude=("https://www.Acme.com/about", "https://www.linkedin.com/company/globex"))

    sixtyfour = agg.adapter("sixtyfour").describe(people)
    assert sixtyfour["query"] == "CTO in Austin"
    assert sixtyfour["exclude_entity_ids"] == list(people.exclude)
    assert sixtyfour["exclusions"]["sent_as"] == "exclude_entity_ids"
    assert sixtyfour["exclusions"]["sent"] == list(people.exclude)
    assert "every record" in sixtyfour["exclusions"]["applied_by_us"]

    orbit = agg.adapter("orbit").describe(people)
    assert orbit["structuredIntent"]["geo"] == {"place": "Austin"}
    assert set(orbit) == {"requestId", "runShape", "structuredIntent", "exclusions"}  # no exclusion on the wire
    assert orbit["exclusions"]["sent_as"] is None and orbit["exclusions"]["sent"] == []
    assert "never read" in orbit["exclusions"]["skipped_before_read"]

    extruct = agg.adapter("extruct").describe(companies)
    assert extruct["exclude_domains"] == ["acme.com"]  # a LinkedIn company URL is not a domain: ours to apply
    assert extruct["exclusions"]["given"] == list(companies.exclude)
    assert extruct["exclusions"]["sent"] == ["acme.com"]
    assert "all of them" in extruct["exclusions"]["applied_by_us"]

    plain = agg.adapter("sixtyfour").describe(SearchRequest(query=DEMO))
    assert "exclusions" not in plain and plain["query"] == DEMO


# -- refused before any call ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"exclude": ("acme.com",)}, "exclude", id="a-domain-in-a-people-search"),
        pytest.param({"mode": "company", "exclude": ("https://www.linkedin.com/in/jane",)}, "exclude",
                     id="a-person-in-a-company-search"),
        pytest.param({"exclude": ("jane@acme.com",)}, "exclude", id="an-email"),
        pytest.param({"identity": PersonIdentity(linkedin_url="https://www.linkedin.com/in/jane-doe"),
                      "exclude": ("jane-doe",)}, "identity", id="a-lookup-of-an-excluded-person"),
        pytest.param({"identity": PersonIdentity(email="jane@acme.com"), "titles": ("CTO",)}, "identity",
                     id="a-lookup-with-fields"),
        pytest.param({"simple_filters": {"hq_country_iso2": "US"}, "titles": ("CTO",)}, "simple_filters",
                     id="a-filter-search-with-fields"),
        pytest.param({"titles": ("CTO", " ")}, "titles", id="a-blank-title"),
        pytest.param({"companies": ("Acme", "Globex"), "providers": ("orbit",)}, "companies",
                     id="two-companies-for-orbit"),
        pytest.param({"locations": ("Berlin", "Munich"), "providers": ("sixtyfour", "orbit")}, "locations",
                     id="two-locations-for-orbit-named"),
        pytest.param({"locations": ("Berlin", "Munich"), "providers": ("orbit",), "strategy": "fallback"},
                     "locations", id="two-locations-for-orbit-in-a-fallback"),
        pytest.param({"titles": ("CTO",), "options": {"orbit": {"structured_intent": {
            "version": "v1", "names": ["Ada Lovelace"]}}}}, "options.orbit.structured_intent",
                     id="a-raw-intent-and-fields"),
    ],
)
async def test_what_cannot_be_done_is_refused_before_any_call(
        make_aggregator: Any, fields: dict[str, Any], field: str) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "extruct", "orbit"), n_companies=50)
    with pytest.raises(ConfigError) as info:
        await agg.search("x", **fields)
    assert info.value.field.startswith(field), info.value
    assert calls(agg) == 0


async def test_orbit_alone_cannot_search_two_locations_so_the_request_is_refused(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("orbit",), n_companies=50)
    with pytest.raises(ConfigError) as info:  # no provider could do it: refused, not an empty run
        await agg.search("x", locations=("Berlin", "Munich"))
    assert info.value.field == "locations" and calls(agg) == 0


# -- the matcher ----------------------------------------------------------------------------------
def _person_hit(provider: str, record_id: str, linkedin: str | None) -> Hit:
    from datetime import UTC, datetime

    return Hit(provider=provider, provider_record_id=record_id, rank=1, retrieved_at=datetime.now(UTC),
               entity=Person(full_name="Jane Doe", linkedin_url=linkedin))


def test_exclusions_match_people_by_any_form_of_their_linkedin_url_or_a_record_id() -> None:
    excluded = Exclusions.of(("http://uk.linkedin.com/in/Jane-Doe/details?x=1", "orb_0123456789ab"), "people")
    assert excluded.matches(_person_hit("orbit", "orb_ffff", "https://www.linkedin.com/in/jane-doe"))
    assert excluded.matches(_person_hit("sixtyfour", "jane-doe", None))  # Sixtyfour keys people by public id
    assert excluded.matches(_person_hit("orbit", "orb_0123456789ab", None))
    assert excluded.excludes_record("orb_0123456789ab")
    assert not excluded.matches(_person_hit("orbit", "orb_1", "https://www.linkedin.com/in/jane-doe-2"))
    bare = Exclusions.of(("Jane-Doe",), "people")
    assert bare.matches(_person_hit("orbit", "orb_1", "https://linkedin.com/in/jane-doe/"))
    assert not Exclusions.of((), "people").matches(_person_hit("orbit", "orb_1", None))


def test_exclusions_match_companies_by_registered_domain_linkedin_url_or_id() -> None:
    from datetime import UTC, datetime

    def company(**fields: Any) -> Hit:
        return Hit(provider="extruct", provider_record_id=fields.pop("rid", "r1"), rank=1,
                   retrieved_at=datetime.now(UTC), entity=Company(name="Acme", **fields))

    excluded = Exclusions.of(("https://www.acme.co.uk/about", "linkedin.com/company/globex", "12345"), "company")
    assert excluded.domains() == ["acme.co.uk"]
    assert excluded.matches(company(website="http://shop.acme.co.uk"))
    assert excluded.matches(company(linkedin_url="https://www.linkedin.com/company/Globex/"))
    assert excluded.matches(company(rid="12345"))
    assert excluded.matches(company(linkedin_url="https://www.linkedin.com/company/12345"))
    assert not excluded.matches(company(domain="acme.com"))
    assert [parse_exclusion(v, "company").kind for v in ("acme.com", "globex", "linkedin.com/company/x")] == [
        "domain", "id", "linkedin"]


def test_fields_compose_one_phrase_and_a_placeholder_query_is_not_sent() -> None:
    request = SearchRequest(query="x", titles=("CTO", "CEO"), companies=("Stripe",), locations=("San Francisco",))
    assert request.search_text == "CTO or CEO at Stripe in San Francisco"
    assert SearchRequest(query="-", companies=("Stripe",)).search_text == "People at Stripe"
    assert SearchRequest(query="fintech founders", locations=("Berlin",)).search_text == "fintech founders, in Berlin"
    assert SearchRequest(query="CTO in Berlin").search_text == "CTO in Berlin"  # no fields: the query as is
