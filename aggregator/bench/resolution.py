"""Resolution quality on the hard world: our resolver side by side with splink, per disagreement kind.

Hits
----
The sandbox world is built hard (:class:`~providers.sandbox.disagreements.DisagreementRates`, the
``hard`` preset unless told otherwise) and every entity is rendered the way its two providers
describe it, each through that provider's view of the entity (an old employer, a nickname, an old
brand, a country-code domain...), when the world makes it visible to that provider -- directly, like
the world-scale ablation of :mod:`aggregator.bench.merging`, rather than through thousands of
sandbox searches (same hits, seconds instead of hours). Per company: Sixtyfour's row (name, domain,
``https://www.`` website -- the old domain when it saw a rename's redirect --, LinkedIn page, HQ city,
ISO2 country, founding year) and Extruct's (legal name half the time, website in nine rows of ten, a
LinkedIn page in half, HQ city, country name, founding year). Per person: Sixtyfour's (name, title,
headline, employer and its LinkedIn page, LinkedIn profile, a work email in a quarter, city) and
Orbit's (name, title, employer, its domain in half, LinkedIn profile in another spelling except one in
ten and the job changes' stale side without one, a work email in 40%, city, country). Ground truth is
the entity each hit was rendered from; kinds are the plan's labels.

A second source, closer to how the hits really arrive: **sandbox searches over the hard world**
(:func:`search_hits`). An in-process :class:`~providers.sandbox.runner.Sandbox` (Sixtyfour, Extruct
and Orbit emulators, the same world) and an :class:`~aggregator.core.Aggregator` on it run
``searches`` queries drawn deterministically from the world (:func:`search_queries`): people
searches "<title> in <city>" and company searches "<industry> companies in <city>", taken in turn from
the entities of each disagreement kind and the untouched ones, so every kind is covered; strategy
``all`` on every capable provider, ``max_results`` 1000. Every provider hit of every search is kept
(the hits of the ``HitsEvent`` items of ``agg.stream``); a hit seen again -- the same provider record, or the same
provider's identical entity under another record id (Extruct's result ids are per task) -- counts once.
Ground truth is :func:`~providers.sandbox.truth.true_id_of` on the hit's raw payload (a hit it cannot
place is dropped and counted); both resolvers get the same hits.

Resolvers
---------
*Ours*: :class:`~aggregator.merge.Resolver` on all hits at once (``merge_hits``), CPU time per hit.

*splink* (4.x, DuckDB backend, optional extra ``deepsearch-aggregator[splink]``): one ``dedupe_only``
model per kind of entity (people, companies), on the hits' fields after the same standardization
both resolvers get (lower case, accents removed, LinkedIn URLs / emails / domains through
:mod:`aggregator.identity`, company names without legal forms), trained unsupervised as splink
intends:

- people -- comparisons: ``NameComparison`` on first name and on surname (exact, Jaro-Winkler 0.92 /
  0.88 / 0.7; term-frequency adjusted, so a rare name counts more), ``JaroWinklerAtThresholds`` on the
  employer's base name (0.9, 0.7), ``ExactMatch`` on the
  LinkedIn profile, email, employer domain-or-LinkedIn key and city (term frequencies off).
  Prediction blocking: same LinkedIn profile; same email; same surname and first letter of first name;
  same first name and employer; same surname and employer.
- companies -- comparisons: ``JaroWinklerAtThresholds`` on the base name (0.95, 0.88, 0.7),
  ``ExactMatch`` on the domain's stem (domain, else the website's, without its public suffix: the
  same preparation ours gets), website domain, LinkedIn page, country, city and founding year. Blocking:
  same domain; same website domain; same LinkedIn page; same first four letters of the name and country.
- training: ``estimate_probability_two_random_records_match`` from the deterministic rules "same
  LinkedIn profile or email" (people) / "same domain or LinkedIn page" (companies) at recall 0.8;
  ``estimate_u_using_random_sampling`` (2e6 pairs); ``estimate_parameters_using_expectation_maximisation``
  twice, blocked on the name then on the employer / country, so every comparison gets m values.
- clustering: ``cluster_pairwise_predictions_at_threshold`` at match probability **0.9** (fixed in
  advance, the value splink's tutorials use; not tuned on the truth). Time per hit is the wall time of
  training, prediction and clustering over the hits.

Scores (:func:`providers.sandbox.truth.score_clusters`): pairwise and B-cubed precision, recall and F1,
overall, per disagreement kind and for the untouched entities (``none``).

Run: ``deepsearch bench --only resolution`` (``--quick``: a 300-company world, 60 searches), or
``python -m aggregator.bench.resolution [N_COMPANIES [SEARCHES]]``; both print a table per source.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from aggregator.bench.common import BenchResult, Metric
from aggregator.identity import (
    domain_stem,
    fold_text,
    normalize_company_name,
    normalize_country,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
)
from aggregator.merge import Resolver
from aggregator.models import Company, Hit, Person
from providers.sandbox.disagreements import COMPANY_KINDS, KINDS, PERSON_KINDS, DisagreementRates
from providers.sandbox.entities import CompanyEntity, PersonEntity
from providers.sandbox.truth import ClusterScores, score_clusters, true_id_of
from providers.sandbox.world import World, build_world

__all__ = ["LabelledHits", "ResolutionBenchConfig", "SearchedHits", "generate", "label_once", "resolve_ours",
           "resolve_splink", "run_resolution", "search_hits", "search_queries"]

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPLINK_THRESHOLD = 0.9
SEARCH_PROVIDERS = ("sixtyfour", "extruct", "orbit")
SEARCH_TIME_SCALE = 0.001  # wall seconds per sandbox second; smaller starves the run deadlines on a busy machine
SEARCH_MAX_RESULTS = 1000


@dataclass(frozen=True)
class ResolutionBenchConfig:
    """World size and seed, the disagreement rates (default: the ``hard`` preset), and whether to run splink."""

    n_companies: int = 1000
    seed: int = 7
    rates: DisagreementRates = field(default_factory=DisagreementRates.hard)
    splink: bool = True
    searches: int = 600  # sandbox searches of the second source (0: the rendered world only)
    search_concurrency: int = 4  # searches in flight at once

    def __post_init__(self) -> None:
        if self.searches < 0 or self.search_concurrency < 1:
            raise ValueError("searches must be >= 0 and search_concurrency >= 1")

    @classmethod
    def quick(cls) -> ResolutionBenchConfig:
        return cls(n_companies=300, searches=60)


@dataclass(frozen=True)
class LabelledHits:
    """Hits and, per hit, the hidden id of the entity it was rendered from."""

    world: World
    hits: list[Hit]
    truth: list[str]

    def kinds(self, true_id: str) -> tuple[str, ...]:
        return self.world.disagreements.kinds_of(true_id)


# -- hits from the hard world -------------------------------------------------------------------------

def _frac(*parts: object) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _hit(provider: str, record_id: str, rank: int, entity: Person | Company) -> Hit:
    return Hit.trusted(provider=provider, provider_record_id=record_id, job_id=f"{provider}-job", rank=rank,
                       entity=entity, retrieved_at=NOW)


def _company_hits(c: CompanyEntity, world: World, rank: int) -> Iterator[Hit]:
    plan, seed = world.disagreements, world.seed
    if world.visible("sixtyfour", c.true_id):
        v = world.company_view("sixtyfour", c)
        yield _hit("sixtyfour", f"sf-{c.true_id}", rank, Company.trusted(
            name=v.name, domain=v.domain, website=f"https://www.{plan.website('sixtyfour', c)}",
            linkedin_url=f"https://www.linkedin.com/company/{v.linkedin_slug}", industry=v.industry,
            hq_city=v.hq_city, hq_country_iso2=v.hq_country_iso2, founded_year=v.founded_year))
    if world.visible("extruct", c.true_id):
        v = world.company_view("extruct", c)
        site = plan.website("extruct", c)
        website = None if _frac(seed, c.true_id, "ex-site") < 0.1 else (
            f"www.{site}" if _frac(c.true_id, "www") < 0.5 else f"https://{site}")
        linkedin = f"https://linkedin.com/company/{v.linkedin_slug}/" if _frac(seed, c.true_id, "ex-li") < 0.5 else None
        yield _hit("extruct", f"ex-{c.true_id}", rank, Company.trusted(
            name=v.legal_name if _frac(seed, c.true_id, "legal") < 0.5 else v.name, website=website,
            linkedin_url=linkedin, hq_city=v.hq_city, hq_country=v.hq_country, founded_year=v.founded_year))


def _person_hits(p: PersonEntity, world: World, rank: int) -> Iterator[Hit]:
    plan, seed = world.disagreements, world.seed
    if world.visible("sixtyfour", p.true_id):
        v = world.person_view("sixtyfour", p)
        c = world.company_view("sixtyfour", world.company(v.company_id))
        yield _hit("sixtyfour", f"sf-{p.true_id}", rank, Person.trusted(
            full_name=v.full_name, first_name=v.first_name, last_name=v.last_name, title=v.title,
            headline=v.headline, company_name=c.name,
            company_linkedin_url=f"https://www.linkedin.com/company/{c.linkedin_slug}",
            linkedin_url=f"https://www.linkedin.com/in/{v.linkedin_slug}" if plan.has_linkedin("sixtyfour", p)
            else None, email=v.email if _frac(seed, p.true_id, "sf-email") < 0.25 else None, city=v.city))
    if world.visible("orbit", p.true_id):
        v = world.person_view("orbit", p)
        c = world.company_view("orbit", world.company(v.company_id))
        keyless = _frac(seed, p.true_id, "orbit-keys") < 0.1 or not plan.has_linkedin("orbit", p)
        yield _hit("orbit", f"orb-{p.true_id}", rank, Person.trusted(
            full_name=v.full_name, first_name=v.first_name, last_name=v.last_name, title=v.title,
            company_name=c.name, company_domain=c.domain if _frac(seed, p.true_id, "orb-dom") < 0.5 else None,
            city=v.city, country=v.country,
            linkedin_url=None if keyless else f"https://linkedin.com/in/{v.linkedin_slug.upper()}/",
            email=v.email if _frac(seed, p.true_id, "orb-email") < 0.4 else None))


def generate(cfg: ResolutionBenchConfig) -> LabelledHits:
    """Every entity of the hard world of ``cfg`` as its providers render it (see the module doc)."""
    world = build_world(cfg.seed, cfg.n_companies, cfg.rates)
    hits: list[Hit] = []
    truth: list[str] = []
    rank = 0
    for company in world.companies:
        rank += 1
        for hit in _company_hits(company, world, rank):
            hits.append(hit)
            truth.append(company.true_id)
        for person in world.employees(company.true_id):
            rank += 1
            for hit in _person_hits(person, world, rank):
                hits.append(hit)
                truth.append(person.true_id)
    return LabelledHits(world, hits, truth)


# -- hits from sandbox searches over the hard world -------------------------------------------------

def search_queries(world: World, n: int) -> list[tuple[str, str]]:
    """``n`` (query, mode) pairs drawn deterministically from ``world`` (see the module doc).

    People: "<title> in <city>" of the people of each person kind, then of untouched people; companies:
    "<industry> companies in <city>" likewise; the kinds take turns (one query each per round, a query
    already drawn skipped), people and companies in proportion to the kinds they have.
    """
    plan = world.disagreements
    people_pools: list[list[str]] = [[] for _ in (*PERSON_KINDS, "none")]
    company_pools: list[list[str]] = [[] for _ in (*COMPANY_KINDS, "none")]
    for p in world.people:
        kinds = plan.kinds_of(p.true_id) or ("none",)
        people_pools[(*PERSON_KINDS, "none").index(kinds[0])].append(f"{p.title} in {p.city}")
    for c in world.companies:
        kinds = plan.kinds_of(c.true_id) or ("none",)
        company_pools[(*COMPANY_KINDS, "none").index(kinds[0])].append(f"{c.industry} companies in {c.hq_city}")
    pools = [(q, "people") for q in people_pools] + [(q, "company") for q in company_pools]
    chosen: dict[tuple[str, str], None] = {}
    cursors = [0] * len(pools)
    while len(chosen) < n and any(cursors[i] < len(pool) for i, (pool, _) in enumerate(pools)):
        for i, (pool, mode) in enumerate(pools):
            while cursors[i] < len(pool) and (pool[cursors[i]], mode) in chosen:
                cursors[i] += 1
            if cursors[i] < len(pool) and len(chosen) < n:
                chosen[(pool[cursors[i]], mode)] = None
                cursors[i] += 1
    return list(chosen)


@dataclass(frozen=True)
class SearchedHits(LabelledHits):
    """:class:`LabelledHits` from sandbox searches, and how they were gathered."""

    searches: int = 0
    raw_hits: int = 0  # before removing hits seen again
    unplaced: int = 0  # hits ground truth could not place (dropped)
    empty_searches: int = 0
    wall_s: float = 0.0


def _identity(hit: Hit) -> tuple[str, str]:
    return hit.provider, hit.entity.model_dump_json()


async def search_hits(cfg: ResolutionBenchConfig) -> SearchedHits:
    """Every provider hit of ``cfg.searches`` sandbox searches over ``cfg``'s hard world, each once,
    labelled by ground truth (see the module doc). Searches run ``cfg.search_concurrency`` at a time;
    the hits keep the order of the queries, then (provider, rank), so the result is deterministic."""
    from aggregator.bench.common import sandbox_settings
    from aggregator.core import Aggregator
    from aggregator.events import HitsEvent
    from providers.sandbox.runner import Sandbox, SandboxConfig

    started = time.perf_counter()
    config = SandboxConfig(time_scale=SEARCH_TIME_SCALE, seed=cfg.seed, n_companies=cfg.n_companies,
                           providers=SEARCH_PROVIDERS, disagreements=cfg.rates)
    gate = asyncio.Semaphore(cfg.search_concurrency)
    async with Sandbox(config) as sandbox, Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        world = sandbox.world
        queries = search_queries(world, cfg.searches)

        async def one(query: str, mode: str) -> list[Hit]:
            found: list[Hit] = []
            async with gate:
                async for event in agg.stream(query, mode=mode, strategy="all", max_results=SEARCH_MAX_RESULTS):
                    if isinstance(event, HitsEvent):
                        found.extend(event.hits)
            return sorted(found, key=lambda h: (h.provider, h.rank, h.provider_record_id))

        per_search = await asyncio.gather(*(one(q, mode) for q, mode in queries))
    hits, truth, unplaced = label_once(per_search, world)
    return SearchedHits(world, hits, truth, searches=len(queries), raw_hits=sum(map(len, per_search)),
                        unplaced=unplaced, empty_searches=sum(not found for found in per_search),
                        wall_s=time.perf_counter() - started)


def label_once(per_search: Sequence[Sequence[Hit]], world: World) -> tuple[list[Hit], list[str], int]:
    """The hits of several searches, each once, with their true ids: ``(hits, truth, unplaced)``.

    A hit counts once: a later one with the same provider record id, or the same provider's identical
    entity under another record id, is dropped; a hit ground truth cannot place is dropped and counted.
    """
    hits: list[Hit] = []
    truth: list[str] = []
    seen: set[tuple[str, str]] = set()
    unplaced = 0
    for found in per_search:
        for hit in found:
            keys = (_key(hit), _identity(hit))
            if any(k in seen for k in keys):
                continue
            seen.update(keys)
            true_id = true_id_of(hit, world)
            if true_id is None:
                unplaced += 1
                continue
            hits.append(hit)
            truth.append(true_id)
    return hits, truth, unplaced


# -- resolvers ----------------------------------------------------------------------------------------

def _key(hit: Hit) -> tuple[str, str]:
    return hit.provider, hit.provider_record_id


def resolve_ours(hits: Sequence[Hit]) -> tuple[list[str], float]:
    """Our resolver: the record id of each hit and the CPU seconds it took."""
    cpu = time.process_time()
    resolver = Resolver()
    resolver.add(hits)
    records = resolver.records()
    elapsed = time.process_time() - cpu
    placed = {_key(h): r.record_id for r in records for h in r.hits}
    return [placed[_key(h)] for h in hits], elapsed


def splink_available() -> bool:
    try:
        import splink  # noqa: F401
    except ImportError:
        return False
    return True


def _clean(value: str | None) -> str | None:
    return fold_text(value) or None if value else None


def _person_row(i: int, h: Hit) -> dict[str, Any]:
    e = h.entity
    assert isinstance(e, Person)
    first = _clean(e.first_name)
    last = _clean(e.last_name)
    return {
        "unique_id": i, "first_name": first, "surname": last,
        "employer": normalize_company_name(e.company_name) or None,
        "employer_key": normalize_domain(e.company_domain) or normalize_linkedin_url(e.company_linkedin_url),
        "linkedin_url": normalize_linkedin_url(e.linkedin_url), "email": normalize_email(e.email),
        "city": _clean(e.city),
    }


def _company_row(i: int, h: Hit) -> dict[str, Any]:
    e = h.entity
    assert isinstance(e, Company)
    name = normalize_company_name(e.name) or None
    return {
        "unique_id": i, "name": name, "name4": name[:4] if name else None,
        "domain": normalize_domain(e.domain) or normalize_domain(e.website), "website": normalize_domain(e.website),
        "linkedin_url": normalize_linkedin_url(e.linkedin_url),
        "domain_stem": domain_stem(normalize_domain(e.domain) or normalize_domain(e.website)),
        "country": normalize_country(e.hq_country_iso2) or normalize_country(e.hq_country),
        "city": _clean(e.hq_city), "founded_year": str(e.founded_year) if e.founded_year else None,
    }


def _splink_clusters(rows: list[dict[str, Any]], people: bool) -> dict[int, str]:
    import pandas as pd  # type: ignore[import-untyped]  # splink's own dependency
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    comparisons: list[Any]
    blocking: list[Any]
    deterministic: list[Any]
    if people:
        comparisons = [
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("employer", [0.9, 0.7]), cl.ExactMatch("linkedin_url"),
            cl.ExactMatch("email"), cl.ExactMatch("employer_key"), cl.ExactMatch("city"),
        ]
        blocking = [block_on("linkedin_url"), block_on("email"), block_on("surname", "substr(first_name, 1, 1)"),
                    block_on("first_name", "employer"), block_on("surname", "employer")]
        deterministic = ["l.linkedin_url = r.linkedin_url", "l.email = r.email"]
        em_rules = [block_on("first_name", "surname"), block_on("linkedin_url")]
    else:
        comparisons = [
            cl.JaroWinklerAtThresholds("name", [0.95, 0.88, 0.7]), cl.ExactMatch("domain_stem"),
            cl.ExactMatch("website"), cl.ExactMatch("linkedin_url"), cl.ExactMatch("country"),
            cl.ExactMatch("city"), cl.ExactMatch("founded_year"),
        ]
        blocking = [block_on("domain"), block_on("website"), block_on("linkedin_url"), block_on("name4", "country")]
        deterministic = ["l.domain = r.domain", "l.linkedin_url = r.linkedin_url"]
        em_rules = [block_on("name4"), block_on("country")]
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=blocking,
                               retain_intermediate_calculation_columns=False)
    linker = Linker(pd.DataFrame(rows), settings, DuckDBAPI(), set_up_basic_logging=False)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=SPLINK_THRESHOLD).as_record_dict()
    return {int(row["unique_id"]): f"{'p' if people else 'c'}{row['cluster_id']}" for row in clusters}


def resolve_splink(hits: Sequence[Hit]) -> tuple[list[str], float]:
    """splink's clusters (one model for people, one for companies; see the module doc) and wall seconds.

    Raises:
        ImportError: splink is not installed (``pip install 'deepsearch-aggregator[splink]'``).
    """
    for name in ("splink", "duckdb"):
        logging.getLogger(name).setLevel(logging.WARNING)
    started = time.perf_counter()
    cluster_of: dict[int, str] = {}
    for people in (True, False):
        rows = [(_person_row if people else _company_row)(i, h) for i, h in enumerate(hits)
                if isinstance(h.entity, Person) is people]
        if rows:
            cluster_of.update(_splink_clusters(rows, people))
    elapsed = time.perf_counter() - started
    return [cluster_of.get(i, f"single{i}") for i in range(len(hits))], elapsed


# -- the benchmark ------------------------------------------------------------------------------------

def _rows(scores: dict[str, ClusterScores]) -> dict[str, dict[str, float]]:
    return {kind: {"hits": s.hits, "P": s.precision, "R": s.recall, "F1": s.f1, "B3_P": s.b3_precision,
                   "B3_R": s.b3_recall, "B3_F1": s.b3_f1} for kind, s in scores.items()}


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """A plain-text table: kind x resolver x pairwise P/R/F1 and B-cubed F1."""
    kinds = ["all", *[k for k in (*KINDS, "none") if any(k in r for r in results.values())]]
    lines = [f"{'kind':<14}{'resolver':<10}{'hits':>7}{'P':>8}{'R':>8}{'F1':>8}{'B3 F1':>8}"]
    for kind in kinds:
        for name, rows in results.items():
            row = rows.get(kind)
            if row:
                lines.append(f"{kind:<14}{name:<10}{row['hits']:>7.0f}{row['P']:>8.4f}{row['R']:>8.4f}"
                             f"{row['F1']:>8.4f}{row['B3_F1']:>8.4f}")
    return "\n".join(lines)


Resolve = Callable[[Sequence[Hit]], tuple[list[str], float]]


def score(data: LabelledHits, resolvers: dict[str, Resolve]
          ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """``data``'s hits through each resolver: scores per resolver and kind, seconds per hit."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    per_hit: dict[str, float] = {}
    for name, resolve in resolvers.items():
        predicted, seconds = resolve(data.hits)
        results[name] = _rows(score_clusters(data.truth, predicted, data.kinds))
        per_hit[name] = seconds / max(1, len(data.hits))
    return results, per_hit


def measure(cfg: ResolutionBenchConfig, resolvers: dict[str, Resolve]
            ) -> tuple[LabelledHits, dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """Hits of ``cfg``'s rendered world through each resolver: scores per resolver and kind, seconds per hit."""
    data = generate(cfg)
    return data, *score(data, resolvers)


def _metrics(prefix: str, results: dict[str, dict[str, dict[str, float]]], per_hit: dict[str, float]) -> list[Metric]:
    metrics: list[Metric] = []
    for name, rows in results.items():
        for kind, row in rows.items():
            metrics.append(Metric(f"{prefix}{name} {kind}: pairwise F1", row["F1"], "",
                                  reference=f"P {row['P']:.4f} R {row['R']:.4f}, B3 F1 {row['B3_F1']:.4f}, "
                                            f"{row['hits']:.0f} hits"))
        metrics.append(Metric(f"{prefix}{name}: time per hit", per_hit[name] * 1e6, "µs"))
    if "splink" in results:
        ours, theirs = results["ours"], results["splink"]
        behind = [k for k in ours if k in theirs and ours[k]["F1"] < theirs[k]["F1"]]
        metrics.append(Metric(f"{prefix}kinds where ours has the lower pairwise F1", float(len(behind)), "",
                              target="<= 0", passed=not behind, reference=", ".join(behind) or None))
    return metrics


async def run_resolution(cfg: ResolutionBenchConfig | None = None) -> BenchResult:
    """Both resolvers on the hard world's hits, rendered and from sandbox searches (``cfg.searches`` > 0);
    pairwise and B-cubed scores per kind, time per hit. Metrics of the search-sourced hits start
    ``searches: ``; ``details["searches"]`` holds their scores."""
    cfg = cfg or ResolutionBenchConfig()
    started = time.perf_counter()
    resolvers: dict[str, Resolve] = {"ours": resolve_ours}
    notes = [f"hard world: seed {cfg.seed}, {cfg.n_companies:,} companies, rates {asdict(cfg.rates)}"]
    if cfg.splink and splink_available():
        resolvers["splink"] = resolve_splink
    elif cfg.splink:
        notes.append("splink is not installed (pip install 'deepsearch-aggregator[splink]'): our resolver only")
    data, results, per_hit = measure(cfg, resolvers)
    metrics = _metrics("", results, per_hit)
    notes.append(f"\nrendered world ({len(data.hits):,} hits):\n" + table(results))
    details: dict[str, Any] = {
        "config": {"n_companies": cfg.n_companies, "seed": cfg.seed, "rates": asdict(cfg.rates),
                   "searches": cfg.searches},
        "hits": len(data.hits), "scores": results, "seconds_per_hit": per_hit}
    if cfg.searches:
        searched = await search_hits(cfg)
        s_results, s_per_hit = score(searched, resolvers)
        metrics += _metrics("searches: ", s_results, s_per_hit)
        details["searches"] = {
            "searches": searched.searches, "empty_searches": searched.empty_searches, "raw_hits": searched.raw_hits,
            "hits": len(searched.hits), "unplaced_hits": searched.unplaced, "search_wall_s": searched.wall_s,
            "scores": s_results, "seconds_per_hit": s_per_hit}
        notes.append(f"\nsandbox searches ({searched.searches} searches, {searched.empty_searches} empty; "
                     f"{searched.raw_hits:,} hits, {len(searched.hits):,} once each, {searched.unplaced} unplaced; "
                     f"{searched.wall_s:.1f} s):\n" + table(s_results))
    return BenchResult(
        name="resolution", title="Entity resolution on the hard world: ours vs splink, per disagreement kind",
        metrics=metrics, wall_s=time.perf_counter() - started, details=details, notes=notes)


def main(argv: Sequence[str]) -> None:
    """``python -m aggregator.bench.resolution [N_COMPANIES [SEARCHES]]``: run and print the tables."""
    cfg = ResolutionBenchConfig()
    if argv:
        cfg = ResolutionBenchConfig(n_companies=int(argv[0]), searches=int(argv[1]) if len(argv) > 1 else cfg.searches)
    result = asyncio.run(run_resolution(cfg))
    click.echo("\n".join(result.notes[1:]))
    click.echo({k: f"{v * 1e6:.1f} µs/hit" for k, v in result.details["seconds_per_hit"].items()})
    if "searches" in result.details:
        searched = result.details["searches"]["seconds_per_hit"]
        click.echo(f"searches: { {k: f'{v * 1e6:.1f} µs/hit' for k, v in searched.items()} }")


if __name__ == "__main__":
    main(sys.argv[1:])
