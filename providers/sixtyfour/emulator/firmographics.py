"""Firmographic fields of the emulator's company documents, derived from the world (contract §3.1).

The documented fields the world does not store are drawn from one ``random.Random`` seeded by
``(world seed, company true id)``, so a company's document is the same in every run, sandbox and
flow (filter search, deep search, CSV). Every draw is made consistent with the world's values:

- ``company_locations_full[]`` ``{location_address, city, state, is_primary}``: the HQ first
  (``is_primary`` true, the same ``city``/``state`` as ``hq_city``/``hq_state``, the address
  ``hq_full_address``), then 0-8 other offices in world cities (more for bigger companies).
- ``employees_count_by_country[]`` ``{country, employee_count}`` (biggest first): the HQ country,
  every office's country and a few remote countries; with ``employees_count_unknown`` it sums to
  ``employees_count``.
- ``employees_count_breakdown_by_region``: ``{employees_count_<region>: n,
  employees_count_unknown: n}`` over :data:`REGIONS`, the by-country counts summed per region
  (so it sums to ``employees_count`` too). ``employees_count_breakdown_by_department``:
  ``{employees_count_<dept>: n}`` over :data:`DEPARTMENTS`, summing to ``employees_count``.
- ``employees_count_inferred`` (within -15 %..+20 % of the count) and ``employees_count_change``
  ``{current, change_yearly, change_yearly_percentage}`` (the percentage is exactly
  ``100 * change / (current - change)``, rounded to 2 decimals).
- ``revenue_annual``: a per-source block ``{"source_5_annual_revenue": {annual_revenue,
  annual_revenue_currency}}`` or, for ~15 % of companies, a bare number (both shapes are seen in
  real rows, REPO NB-fast); ``revenue_annual_range`` ``{"source_4_annual_revenue_range":
  {annual_revenue_range_from, annual_revenue_range_to (None above $10B),
  annual_revenue_range_currency}}`` is the bucket holding that revenue. Source keys and buckets
  follow third-party readers of these rows (3P); amounts are USD.
- ``company_name_alias[]`` (the legal name, the name without spaces), ``canonical_linkedin_url``
  (``https://www.linkedin.com/company/<slug>``, the clean form of ``linkedin_url``),
  ``description_enriched`` (the description plus size, offices and keywords), ``company_emails[]``
  at the company's domain and ``company_phone_numbers[]`` (E.164, the HQ city's prefixes).

Region and department key names are INF (the docs give only the ``employees_count_<x>`` pattern).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from providers.sandbox.entities import CompanyEntity
from providers.sandbox.vocab import CITIES, City

__all__ = ["DEPARTMENTS", "REGIONS", "REGION_OF_COUNTRY", "REVENUE_BUCKETS", "apportion", "firmographics"]

_T = TypeVar("_T")

REGIONS = ("africa", "asia", "europe", "latin_america", "middle_east", "northern_america",
           "oceania")
DEPARTMENTS = ("engineering", "sales", "marketing", "operations", "finance", "human_resources",
               "product", "customer_service", "legal", "administrative")
_DEPT_WEIGHTS = (0.22, 0.16, 0.08, 0.14, 0.06, 0.05, 0.07, 0.12, 0.03, 0.07)
_TECH = {"Software", "Cybersecurity"}  # engineering-heavy industries
REVENUE_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 1_000_000), (1_000_000, 10_000_000), (10_000_000, 25_000_000),
    (25_000_000, 50_000_000), (50_000_000, 100_000_000), (100_000_000, 250_000_000),
    (250_000_000, 500_000_000), (500_000_000, 1_000_000_000),
    (1_000_000_000, 10_000_000_000), (10_000_000_000, None),
)
_REGION_OF_ISO2 = {"US": "northern_america", "CA": "northern_america", "IL": "middle_east",
                   "SG": "asia", "IN": "asia", "AU": "oceania"}  # everything else: europe
_REMOTE = (("Brazil", "latin_america"), ("Mexico", "latin_america"), ("Poland", "europe"),
           ("Portugal", "europe"), ("Philippines", "asia"), ("Japan", "asia"),
           ("South Africa", "africa"), ("United Arab Emirates", "middle_east"))
REGION_OF_COUNTRY = {c.country: _REGION_OF_ISO2.get(c.iso2, "europe") for c in CITIES} | dict(_REMOTE)
_CITY_BY_NAME = {c.name: c for c in CITIES}
_OTHER_CITIES = {name: tuple(c for c in CITIES if c.name != name) for name in _CITY_BY_NAME}
_STREETS = ("Market", "Main", "Cedar", "King", "Harbor", "Park", "Mission", "Oak", "Station",
            "Bridge", "Mill", "Church", "High", "Victoria", "Union", "Liberty", "Canal", "River")
_SUFFIXES = ("Street", "Avenue", "Road", "Way", "Boulevard")
_MAILBOXES = ("info", "hello", "contact", "sales", "support", "press", "careers", "partners")


def _randint(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint(low, high)`` from one ``random()`` draw (several times cheaper)."""
    return low + int(rng.random() * (high - low + 1))


def _pick(rng: random.Random, items: Sequence[_T]) -> _T:
    return items[int(rng.random() * len(items))]


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder): the parts sum to ``total``."""
    scale = sum(weights)
    raw = [total * w / scale for w in weights]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _hq_city(company: CompanyEntity) -> City:
    known = _CITY_BY_NAME.get(company.hq_city)
    if known is not None and known.country == company.hq_country:
        return known
    return City(company.hq_city, company.hq_state, company.hq_country, company.hq_country_iso2,
                0.0, ("+1",), 7)


def _address(rng: random.Random, city: City) -> str:
    """A street address in ``city``, in the country's usual order (synthetic)."""
    number, street = _randint(rng, 1, 999), f"{_pick(rng, _STREETS)} {_pick(rng, _SUFFIXES)}"
    if city.iso2 == "US":
        return f"{number} {street}, {city.name}, {city.state} {_randint(rng, 10000, 99999)}, {city.country}"
    if city.iso2 == "CA":
        postal = f"{_pick(rng, 'KLMNTV')}{_randint(rng, 1, 9)}A {_randint(rng, 1, 9)}B{_randint(rng, 1, 9)}"
        return f"{number} {street}, {city.name}, {city.state} {postal}, {city.country}"
    if city.iso2 == "GB":
        postal = f"{city.name[:2].upper()}{_randint(rng, 1, 20)} {_randint(rng, 1, 9)}AB"
        return f"{number} {street}, {city.name} {postal}, {city.country}"
    return f"{street} {number}, {_randint(rng, 1000, 99999)} {city.name}, {city.country}"


def _offices(rng: random.Random, hq: City, employees: int) -> list[City]:
    """Office cities other than the HQ; none below 50 employees, up to 8 for the largest."""
    low, high = next(((lo, hi) for top, lo, hi in ((50, 0, 0), (200, 0, 1), (1000, 1, 3),
                                                   (5000, 2, 5)) if employees < top), (3, 8))
    n = _randint(rng, low, high)
    return rng.sample(_OTHER_CITIES.get(hq.name, CITIES), n) if n else []


def _locations(rng: random.Random, company: CompanyEntity, hq: City,
               offices: list[City]) -> tuple[str, list[dict[str, Any]]]:
    """``(hq_full_address, company_locations_full)``: the HQ first, then the offices."""
    hq_address = _address(rng, hq)
    rows = [{"location_address": hq_address, "city": company.hq_city, "state": company.hq_state,
             "is_primary": True}]
    rows += [{"location_address": _address(rng, city), "city": city.name, "state": city.state,
              "is_primary": False} for city in offices]
    return hq_address, rows


def _by_country(rng: random.Random, company: CompanyEntity,
                offices: list[City]) -> tuple[list[dict[str, Any]], int]:
    """``(employees_count_by_country, employees_count_unknown)``; every office country has >= 1."""
    total = company.employees_count
    unknown = min(int(total * rng.uniform(0.0, 0.12)), max(total - 1, 0))
    known = total - unknown
    required = list(dict.fromkeys([company.hq_country, *(c.country for c in offices)]))
    n_remote = _randint(rng, 0, 3) if total >= 200 else 0
    remote = [name for name, _ in rng.sample(_REMOTE, n_remote) if name not in required] if n_remote else []
    weights = [1.0] + [rng.uniform(0.03, 0.2) for _ in required[1:]]
    weights += [rng.uniform(0.002, 0.02) for _ in remote]
    floor = len(required) if known >= len(required) else 0
    counts = apportion(known - floor, weights)
    counts = [n + (1 if i < len(required) and floor else 0) for i, n in enumerate(counts)]
    pairs = sorted(((n, country) for country, n in zip([*required, *remote], counts, strict=True) if n > 0),
                   key=lambda pair: -pair[0])
    return [{"country": country, "employee_count": n} for n, country in pairs], unknown


def _by_region(by_country: list[dict[str, Any]], unknown: int) -> dict[str, int]:
    totals = dict.fromkeys(REGIONS, 0)
    for row in by_country:
        totals[REGION_OF_COUNTRY.get(row["country"], "europe")] += row["employee_count"]
    return {**{f"employees_count_{r}": n for r, n in totals.items()}, "employees_count_unknown": unknown}


def _by_department(rng: random.Random, company: CompanyEntity) -> dict[str, int]:
    weights = [w * rng.uniform(0.6, 1.4) for w in _DEPT_WEIGHTS]
    if company.industry in _TECH or "saas" in company.categories:
        weights[0] *= 2.0  # engineering
        weights[6] *= 1.5  # product
    counts = apportion(company.employees_count, weights)
    return {f"employees_count_{d}": n for d, n in zip(DEPARTMENTS, counts, strict=True)}


def _change(rng: random.Random, company: CompanyEntity) -> dict[str, Any]:
    """``employees_count_change``: young, funded companies grow faster."""
    current = company.employees_count
    growth = rng.uniform(-0.1, 0.15) if company.is_public else rng.uniform(-0.05, 0.6)
    previous = max(1, round(current / (1 + growth)))
    change = current - previous
    return {"current": current, "change_yearly": change,
            "change_yearly_percentage": round(100 * change / previous, 2)}


def _revenue(rng: random.Random, company: CompanyEntity) -> tuple[Any, dict[str, Any]]:
    """``(revenue_annual, revenue_annual_range)``: the amount is USD per employee x headcount."""
    per_employee = rng.uniform(60_000, 300_000) * (1.5 if company.is_public else 1.0)
    amount = max(10_000, int(round(company.employees_count * per_employee, -3)))
    low, high = next(b for b in REVENUE_BUCKETS if b[1] is None or amount < b[1])
    span = {"annual_revenue_range_from": low, "annual_revenue_range_to": high,
            "annual_revenue_range_currency": "USD"}
    point: Any = amount if rng.random() < 0.15 else {
        "source_5_annual_revenue": {"annual_revenue": amount, "annual_revenue_currency": "USD"}}
    return point, {"source_4_annual_revenue_range": span}


def _aliases(company: CompanyEntity) -> list[str]:
    candidates = (company.legal_name, company.name.replace(" ", ""))
    return [a for a in dict.fromkeys(candidates) if a and a != company.name]


def _phones(rng: random.Random, hq: City, offices: list[City]) -> list[str]:
    cities = [hq, *offices[:1]] if offices and rng.random() < 0.5 else [hq]
    return [_pick(rng, city.phone_prefixes) + str(_randint(rng, 0, 10**city.phone_digits - 1)).zfill(city.phone_digits)
            for city in cities]


def _enriched(company: CompanyEntity, inferred: int, offices: list[City]) -> str:
    where = ""
    if offices:
        where = f" across {len(offices) + 1} offices, including {', '.join(c.name for c in offices[:3])}"
    return (f"{company.description} {company.name} employs about {inferred:,} people{where}. "
            f"Keywords: {', '.join(company.categories)}.")


def firmographics(seed: int, company: CompanyEntity) -> dict[str, Any]:
    """The documented company fields the world lacks (module doc), as ``raw_source`` entries."""
    rng = random.Random(f"{seed}:{company.true_id}:firmographics")
    hq = _hq_city(company)
    offices = _offices(rng, hq, company.employees_count)
    hq_address, locations = _locations(rng, company, hq, offices)
    by_country, unknown = _by_country(rng, company, offices)
    inferred = max(0, round(company.employees_count * rng.uniform(0.85, 1.2)))
    revenue, revenue_range = _revenue(rng, company)
    return {
        "company_name_alias": _aliases(company),
        "canonical_linkedin_url": f"https://www.linkedin.com/company/{company.linkedin_slug}",
        "description_enriched": _enriched(company, inferred, offices),
        "hq_full_address": hq_address, "company_locations_full": locations,
        "employees_count_inferred": inferred, "employees_count_change": _change(rng, company),
        "employees_count_breakdown_by_department": _by_department(rng, company),
        "employees_count_breakdown_by_region": _by_region(by_country, unknown),
        "employees_count_by_country": by_country,
        "revenue_annual": revenue, "revenue_annual_range": revenue_range,
        "company_emails": [f"{box}@{company.domain}"
                           for box in rng.sample(_MAILBOXES, _randint(rng, 1, 3))],
        "company_phone_numbers": _phones(rng, hq, offices),
    }
