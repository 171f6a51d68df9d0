"""Entity types of the sandbox's synthetic world (the ground truth every emulator draws from).

Every entity carries a hidden true id (``true_id``) that no provider exposes as such; entity
resolution is scored against it. Provider emulators render these entities into their own wire
shapes, each with its own coverage and formatting quirks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CompanyEntity", "FundingRound", "PersonEntity"]


@dataclass(frozen=True, slots=True)
class FundingRound:
    name: str  # "Seed", "Series A", ... as Sixtyfour's funding_rounds.name
    amount_usd: int
    announced_date: str  # ISO date "2024-03-01"


@dataclass(frozen=True, slots=True)
class CompanyEntity:
    true_id: str  # "co_000123": hidden ground-truth id
    name: str  # "Acme Freight"
    legal_name: str  # "Acme Freight, Inc."
    domain: str  # registered domain, "acmefreight.com"
    linkedin_slug: str  # "acme-freight" -> https://www.linkedin.com/company/acme-freight
    linkedin_id: int  # numeric LinkedIn company id (Sixtyfour source_id / companyId)
    industry: str  # "Software", "Logistics", "Financial Services", ...
    categories: tuple[str, ...]  # keywords, e.g. ("saas", "freight forwarding", "b2b")
    description: str  # one or two sentences that mention the categories
    founded_year: int
    hq_city: str  # real city name, "New York"
    hq_state: str | None  # "NY" style region code or None outside US/CA
    hq_country: str  # "United States"
    hq_country_iso2: str  # "US"
    employees_count: int
    funding_stage: str  # last round name: "Bootstrapped", "Seed", "Series A".."Series E", "Public"
    funding_rounds: tuple[FundingRound, ...] = field(default_factory=tuple)
    is_public: bool = False


@dataclass(frozen=True, slots=True)
class PersonEntity:
    true_id: str  # "pe_000123": hidden ground-truth id
    first_name: str
    last_name: str
    full_name: str
    title: str  # canonical current title, "VP of Engineering"
    # Sixtyfour vocabulary: "CXO", "VP", "Director", "Head", "Manager", "Senior", "Entry",
    # "Owner / Founder", "Partner"
    seniority: str
    # "Engineering", "Sales", "Marketing", "Finance", "Operations", "Product", "Design", "Leadership"...
    job_function: str
    headline: str  # "VP of Engineering at Acme Freight"
    city: str
    state: str | None
    country: str
    country_iso2: str
    company_id: str  # true_id of the current employer
    linkedin_slug: str  # public id, "jane-doe-4821"
    email: str  # work email at the company's domain
    phone: str  # E.164
    skills: tuple[str, ...] = ()
    school: str | None = None
    github_username: str | None = None
    previous_company_ids: tuple[str, ...] = ()
