"""Wire documents of the Extruct emulator: the task object (§3) and result rows (§6).

The task object always carries every field of contract §3 (INF: the newest create example omits
``status``, taken as a rendering quirk). Result rows follow §6: ``company_website`` is a bare
domain (``matchory.com``) except for deterministic quirks (a few ``www.`` and ``https://``
variants, settings ``website_www_rate`` / ``website_scheme_rate``) and ``company_name`` is the
legal name ("Acme Freight GmbH") for a few companies (``legal_name_rate``), so entity resolution
has work to do (design §4); ``employee_count`` uses the documented buckets;
``hq_state_province`` is the region's full name (null when unknown, INF);
``company_profile_id`` is stable per company across tasks (INF: an Extruct DB profile).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from providers.extruct.emulator.grading import stable_fraction
from providers.extruct.emulator.models import EmulatorSettings
from providers.extruct.emulator.tasks import Evaluation, Task, iso_z
from providers.sandbox.entities import CompanyEntity
from providers.sandbox.vocab import REGION_NAMES
from providers.sandbox.world import World

__all__ = ["employee_bucket", "profile_id", "result_doc", "result_id", "task_doc"]

_BUCKETS = ((10, "1-10"), (50, "11-50"), (200, "51-200"), (500, "201-500"), (1000, "501-1000"),
            (5000, "1001-5000"), (10000, "5001-10000"))  # fmt: skip
_CITY_REGIONS = {
    "London": "England", "Manchester": "England", "Edinburgh": "Scotland", "Berlin": "Berlin",
    "Munich": "Bavaria", "Hamburg": "Hamburg", "Paris": "Île-de-France",
    "Amsterdam": "North Holland", "Dublin": "County Dublin", "Stockholm": "Stockholm County",
    "Barcelona": "Catalonia", "Zurich": "Zurich", "Tel Aviv": "Tel Aviv District",
    "Bangalore": "Karnataka", "Mumbai": "Maharashtra", "Sydney": "New South Wales",
    "Melbourne": "Victoria",
}  # fmt: skip


def _uuid(*parts: object) -> str:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def result_id(task_id: str, company_true_id: str) -> str:
    """The stable result id of a company within a task (a UUID)."""
    return _uuid("result", task_id, company_true_id)


def profile_id(seed: int, company_true_id: str) -> str:
    """The company's profile id, the same in every task (a UUID)."""
    return _uuid("profile", seed, company_true_id)


def employee_bucket(employees: int) -> str:
    """The documented ``employee_count`` bucket of a head count (``"11-50"``)."""
    return next((label for top, label in _BUCKETS if employees <= top), "10001+")


def task_doc(task: Task, now: float) -> dict[str, Any]:
    """The task object at ``now`` (contract §3), every field present."""
    return {
        "id": task.task_id,
        "created_at": iso_z(task.created_wall),
        "status": task.status(now),
        "query": task.query,
        "desired_num_results": task.desired_num_results,
        "is_exhausted": task.is_exhausted(now),
        **task.counters(now),
        "table_id": task.table_id,
        "auto_data_sources": task.auto_data_sources,
        "data_sources": list(task.data_sources),
        "criteria": [{"key": k, "name": n, "criterion": c} for k, n, c in task.criteria],
        "exclude_domains": list(task.exclude_domains),
    }


def _website(seed: int, domain: str, *, www_rate: float, scheme_rate: float) -> str:
    x = stable_fraction(seed, domain, "website")
    if x < scheme_rate:
        return f"https://{domain}"
    if x < scheme_rate + www_rate:
        return f"www.{domain}"
    return domain


def _descriptions(c: CompanyEntity) -> tuple[str, str]:
    first = c.description.split(". ", 1)[0].rstrip(".") + "."
    size = employee_bucket(c.employees_count)
    extra = f" The company employs {size} people and operates in {c.industry.lower()}."
    return first, c.description + extra


def result_doc(task: Task, ev: Evaluation, world: World, settings: EmulatorSettings) -> dict[str, Any]:
    """One row of ``results`` (contract §6)."""
    canonical = world.company(ev.company_id)
    c = world.company_view("extruct", canonical)  # the hard world's disagreements, if any
    short, full = _descriptions(c)
    legal = stable_fraction(world.seed, c.true_id, "legal-name") < settings.legal_name_rate
    website = _website(world.seed, world.disagreements.website("extruct", canonical),
                       www_rate=settings.website_www_rate, scheme_rate=settings.website_scheme_rate)  # fmt: skip
    return {
        "id": ev.result_id,
        "task_id": task.task_id,
        "company_name": c.legal_name if legal else c.name,
        "company_description": short,
        "company_full_description": full,
        "company_website": website,
        "relevance": ev.relevance,
        "created_at": iso_z(task.wall_of(ev.finished_at)),
        "company_profile_id": profile_id(world.seed, c.true_id),
        "source": ev.source,
        "scores": {key: score.to_doc() for key, score in ev.scores.items()},
        "founding_year": c.founded_year,
        "employee_count": employee_bucket(c.employees_count),
        "hq_country": c.hq_country,
        "hq_state_province": REGION_NAMES.get(c.hq_state or "") or _CITY_REGIONS.get(c.hq_city),
        "hq_city": c.hq_city,
    }
