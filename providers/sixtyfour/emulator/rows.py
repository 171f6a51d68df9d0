"""Render world entities as Sixtyfour result rows and CSV records (contract §3).

- People ``raw_source`` (§3.2, DOC from Sixtyfour's notebook): LinkedIn-style camelCase --
  ``publicId, fullName, headline, locationName, seniority, jobFunction, currentCompanies[]`` with
  ``{company: {companyId, url, name}, positions: [{title}]}``. ``company.name`` is an INF extra.
  ``positions`` is missing on ~5 % of rows (DOC quirk). No email or phone (DOC).
- Company ``raw_source`` (§3.1, DOC field names): flat snake_case, with the nested lists
  ``funding_rounds[] {name, amount_raised, announced_date}`` and ``company_updates[]
  {description, date}`` (0-3 posts per company, drawn deterministically; young companies may
  announce their YC batch, e.g. "(YC X25)", as in the filter-search docs' example), plus the
  firmographics of :mod:`.firmographics` (offices, headcount breakdowns, revenue, aliases,
  emails, phones), consistent with the world's values.
- CSV columns (§3.3) are INF: no real header has been published. Lists are JSON in their cell.
- ``{"element": X}`` list wrappers (§3.1, REPO NB-fast: "the index wraps every list item"):
  :func:`wrap_list_items` applies them to served company rows when the emulator setting
  ``wrap_company_list_items`` is on (off by default: whether API rows carry them is UNK, §9).

Quirks are deterministic per entity (a hash of seed + true id), so a run is reproducible:
``locationName`` variants ("City, State, Country", "Greater X Area", "City, Country",
country only), ``linkedin_url`` without ``www.`` or with a trailing slash, bare-domain websites.
Exclusions (§5) are a post-filter; :class:`Exclusions` matches LinkedIn ids/URLs, numeric
company ids and exact domains.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from providers.sandbox.entities import CompanyEntity, PersonEntity
from providers.sandbox.vocab import REGION_NAMES
from providers.sixtyfour.emulator.firmographics import firmographics

__all__ = [
    "COMPANY_CSV_COLUMNS",
    "PEOPLE_CSV_COLUMNS",
    "Exclusions",
    "Row",
    "company_updates",
    "render_company",
    "render_csv",
    "render_person",
    "wrap_list_items",
]

PEOPLE_CSV_COLUMNS = ("full_name", "first_name", "last_name", "title", "headline", "company_name",
                      "company_domain", "linkedin", "location", "seniority", "job_function")
COMPANY_CSV_COLUMNS = ("company_name", "website", "website_domain", "linkedin_url", "industry",
                       "employees_count", "hq_city", "hq_state", "hq_country", "hq_country_iso2",
                       "founded_year", "description", "last_funding_type", "last_funding_amount",
                       "canonical_linkedin_url", "hq_full_address", "employees_count_inferred",
                       "company_name_alias", "company_emails", "company_phone_numbers")
_UPDATES_TODAY = date(2025, 6, 30).toordinal()  # the world's fixed "today" (sandbox.world)
_SIZE_RANGES = ((10, "1-10"), (50, "11-50"), (200, "51-200"), (500, "201-500"),
                (1000, "501-1000"), (5000, "1001-5000"), (10000, "5001-10000"))


@dataclass(frozen=True, slots=True)
class Row:
    """One result: ``/search/query`` row (``raw_document_id``, ``raw_source``) + CSV record."""

    raw_document_id: str
    raw_source: dict[str, Any]
    csv_record: dict[str, Any]
    match_keys: frozenset[str]  # normalized ids an exclusion may name

    def to_doc(self, *, wrap_lists: bool = False) -> dict[str, Any]:
        """The ``/search/query`` result row; ``wrap_lists``: list items as ``{"element": X}``."""
        source = wrap_list_items(self.raw_source) if wrap_lists else self.raw_source
        return {"raw_document_id": self.raw_document_id, "raw_source": source}


def wrap_list_items(value: Any) -> Any:
    """``value`` with every list item, at any depth, wrapped as ``{"element": item}`` (§3.1)."""
    if isinstance(value, dict):
        return {key: wrap_list_items(item) for key, item in value.items()}
    if isinstance(value, list):
        return [{"element": wrap_list_items(item)} for item in value]
    return value


def _frac(seed: int, *parts: str) -> float:
    """A stable pseudo-random number in [0, 1) for (seed, parts)."""
    digest = hashlib.blake2b(":".join((str(seed), *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _location(seed: int, person: PersonEntity) -> str:
    x = _frac(seed, person.true_id, "loc")
    city = "New York City" if person.city == "New York" else person.city
    if x < 0.15:
        return f"Greater {city} Area"
    if x < 0.20 or person.city == person.country:
        return person.country
    region = REGION_NAMES.get(person.state or "", person.state)
    if region and x < 0.9:
        return f"{person.city}, {region}, {person.country}"
    return f"{person.city}, {person.country}"


def _company_linkedin(seed: int, company: CompanyEntity) -> str:
    x = _frac(seed, company.true_id, "li")
    host = "linkedin.com" if x < 0.06 else "www.linkedin.com"
    slash = "/" if 0.06 <= x < 0.10 else ""
    return f"https://{host}/company/{company.linkedin_slug}{slash}"


def render_person(
    seed: int, person: PersonEntity, company: CompanyEntity, *, positions_missing_rate: float
) -> Row:
    """The people row of ``person`` working at ``company``."""
    location = _location(seed, person)
    current: dict[str, Any] = {"company": {
        "companyId": company.linkedin_id,
        "url": f"https://www.linkedin.com/company/{company.linkedin_slug}",
        "name": company.name,  # INF extra: not seen in the notebook's rows
    }}
    if _frac(seed, person.true_id, "positions") >= positions_missing_rate:
        current["positions"] = [{"title": person.title}]
    source = {
        "publicId": person.linkedin_slug, "fullName": person.full_name,
        "headline": person.headline, "locationName": location, "seniority": person.seniority,
        "jobFunction": person.job_function, "currentCompanies": [current],
    }
    record = {
        "full_name": person.full_name, "first_name": person.first_name,
        "last_name": person.last_name, "title": person.title, "headline": person.headline,
        "company_name": company.name, "company_domain": company.domain,
        "linkedin": f"https://www.linkedin.com/in/{person.linkedin_slug}", "location": location,
        "seniority": person.seniority, "job_function": person.job_function,
    }
    return Row(person.linkedin_slug, source, record, frozenset({person.linkedin_slug.lower()}))


def _size_range(employees: int) -> str:
    return next((label for top, label in _SIZE_RANGES if employees <= top), "10001+")


def _funding(company: CompanyEntity) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rounds = [{"name": r.name, "amount_raised": r.amount_usd, "announced_date": r.announced_date}
              for r in company.funding_rounds]
    if not rounds:
        return rounds, None
    last = rounds[-1]
    return rounds, {"type": last["name"], "amount_raised": last["amount_raised"],
                    "announced_date": last["announced_date"]}


def _hq_location(company: CompanyEntity) -> str:
    region = REGION_NAMES.get(company.hq_state or "", company.hq_state)
    parts = (company.hq_city, region, company.hq_country)
    return ", ".join(part for part in parts if part)


def _cell(value: Any) -> Any:
    """A CSV cell: lists and objects as JSON (§3.3), scalars as they are."""
    return orjson.dumps(value).decode() if isinstance(value, list | dict) else value


def render_company(seed: int, company: CompanyEntity, website_domain: str | None = None) -> Row:
    """The company row of ``company``; ``website_domain``: the domain its ``website`` shows when it is
    another one than ``company.domain`` (a hard world's rename whose old domain redirects, see
    :meth:`~providers.sandbox.disagreements.Disagreements.website`); ``website_domain`` stays the company's."""
    bare = _frac(seed, company.true_id, "web") < 0.08
    site = website_domain or company.domain
    website = f"https://{site}/" if bare else f"https://www.{site}"
    rounds, last = _funding(company)
    source = {
        "company_name": company.name, "company_legal_name": company.legal_name,
        "website": website, "website_domain": company.domain,
        "linkedin_url": _company_linkedin(seed, company), "source_id": company.linkedin_id,
        "description": company.description, "industry": company.industry,
        "founded_year": company.founded_year, "hq_city": company.hq_city,
        "hq_state": company.hq_state, "hq_country": company.hq_country,
        "hq_country_iso2": company.hq_country_iso2, "hq_location": _hq_location(company),
        "employees_count": company.employees_count,
        "size_range": _size_range(company.employees_count), "funding_rounds": rounds,
        "last_funding_round": last,
        "last_funding_round_amount_raised": last["amount_raised"] if last else None,
        "is_public": company.is_public,
        "ownership_status": "public" if company.is_public else "private",
        "categories_and_keywords": list(company.categories),
        "company_updates": company_updates(seed, company),
        **firmographics(seed, company),
    }
    record = {name: _cell(source.get(name)) for name in COMPANY_CSV_COLUMNS}
    record["last_funding_type"] = last["type"] if last else None
    record["last_funding_amount"] = last["amount_raised"] if last else None
    keys = {company.linkedin_slug.lower(), str(company.linkedin_id), company.domain.lower()}
    return Row(company.linkedin_slug, source, record, frozenset(keys))


_UPDATE_TEMPLATES = (
    "We're hiring! {name} is growing the team in {city}. Come build {topic} with us.",
    "{name} is now {employees}+ people strong. Thank you to our customers and partners!",
    "Excited to launch our new {topic} product for customers in {country}.",
    "{name} will be at the {topic} summit next month. Come say hi at our booth!",
)
_YC_BATCHES = {2025: ("X25", "W25"), 2024: ("X25", "S24", "W24"), 2023: ("S23", "W23")}


def _fracs(seed: int, *parts: str) -> list[float]:
    """16 stable pseudo-random numbers in [0, 1) from one hash (cheaper than 16 ``_frac``)."""
    digest = hashlib.blake2b(":".join((str(seed), *parts)).encode(), digest_size=64).digest()
    return [int.from_bytes(digest[i:i + 4], "big") / 2**32 for i in range(0, 64, 4)]


def company_updates(seed: int, company: CompanyEntity) -> list[dict[str, str]]:
    """0-3 deterministic LinkedIn-style posts ``{description, date}``, newest first."""
    x = _fracs(seed, company.true_id, "updates")
    topic = next((c for c in company.categories if c not in ("saas", "b2b", "b2c")),
                 company.industry.lower())
    texts = [_UPDATE_TEMPLATES[int(x[1 + i] * 4)].format(
        name=company.name, city=company.hq_city, topic=topic, country=company.hq_country,
        employees=company.employees_count // 10 * 10 or company.employees_count)
        for i in range(int(x[0] * 4))]
    if company.funding_rounds and x[4] < 0.5:
        last = company.funding_rounds[-1]
        texts.insert(0, f"{company.name} raised a {last.name} of "
                        f"${last.amount_usd / 1e6:.1f}M to accelerate {topic}.")
    batches = _YC_BATCHES.get(min(company.founded_year + 1, 2025))
    if batches and company.funding_stage in ("Seed", "Series A") and x[5] < 0.5:
        batch = batches[int(x[5] * 2 * len(batches))]
        texts.insert(0, f"Proud to announce that {company.name} is backed by Y Combinator "
                        f"(YC {batch})! We're building {topic}.")
    return [{"description": text,
             "date": date.fromordinal(_UPDATES_TODAY - 20 * i - int(x[6 + i] * 20)).isoformat()}
            for i, text in enumerate(texts[:3])]


def render_csv(mode: str, rows: Iterable[Row]) -> bytes:
    """The CSV export of ``rows`` (UTF-8, header line first; None cells are empty)."""
    columns = PEOPLE_CSV_COLUMNS if mode == "people" else COMPANY_CSV_COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.csv_record)
    return out.getvalue().encode()


def _normalize_id(value: str) -> str:
    text = value.strip().lower().split("?", 1)[0].rstrip("/")
    for marker in ("/in/", "/company/"):
        if marker in text:
            return text.split(marker, 1)[1].split("/", 1)[0]
    text = text.removeprefix("https://").removeprefix("http://").removeprefix("www.")
    return text.split("/", 1)[0]


@dataclass(frozen=True)
class Exclusions:
    """Inline exclusions of one request (contract §5): a post-filter over rendered rows."""

    keys: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, mode: str, public_ids: Sequence[str] | None, entity_ids: Sequence[str] | None
    ) -> Exclusions:
        """``exclude_public_ids`` applies to people mode only (DOC); ``exclude_entity_ids`` to both."""
        values = list(entity_ids or ())
        if mode == "people":
            values += list(public_ids or ())
        return cls(frozenset(_normalize_id(v) for v in values if v.strip()))

    def excludes(self, row: Row) -> bool:
        return not self.keys.isdisjoint(row.match_keys)
