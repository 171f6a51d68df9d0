"""Extruct's discovery-task wire format (private) and the pure functions that normalize it.

Follows contract ``extruct.md``: §3 the task object (shared by create, get, list, resume and the
results envelope), §6 results (``scores`` keyed by criterion with ``grade`` 1-5, ``explanation``,
``sources``; ``relevance`` 0-100; ``employee_count`` size buckets), §8 the bare-array list.
Wire models ignore unknown fields (the results shape changed before, §12); a payload that does
not fit raises :class:`~aggregator.errors.ProviderProtocolError` naming the endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from aggregator.contract import parse_payload
from aggregator.merge import normalize_domain
from aggregator.models import Company, Evidence, Hit

__all__ = [
    "PROVIDER",
    "Result",
    "ResultsResponse",
    "Task",
    "TaskList",
    "company_from_result",
    "hit_from_result",
    "parse",
]

PROVIDER = "extruct"
M = TypeVar("M")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WireCriterion(_Wire):
    key: str
    name: str | None = None
    criterion: str | None = None


class Task(_Wire):
    """The task object (§3). A ``created_at`` without a time zone is taken as UTC."""

    id: str = Field(min_length=1)
    created_at: datetime | None = None
    status: str
    query: str = ""
    desired_num_results: int = 0
    is_exhausted: bool = False
    num_results_discovered: int = 0
    num_results_enriched: int = 0
    num_results_evaluated: int = 0
    num_results: int = 0
    criteria: list[WireCriterion] = Field(default_factory=list)
    exclude_domains: list[str] = Field(default_factory=list)

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Score(TypedDict, total=False):
    """One criterion's score (§6): validated as a dict, not a model (a page holds hundreds; a model
    costs a third more to build). Missing keys stay missing: read with ``.get``."""

    grade: int | None
    explanation: str | None
    sources: list[str]


class Result(_Wire):
    """One discovered company (§6)."""

    id: str
    task_id: str | None = None
    company_name: str | None = None
    company_description: str | None = None
    company_full_description: str | None = None
    company_website: str | None = None
    relevance: float | None = None
    company_profile_id: str | None = None
    source: str | None = None
    scores: dict[str, Score] = Field(default_factory=dict)
    founding_year: int | None = None
    employee_count: str | None = None
    hq_country: str | None = None
    hq_state_province: str | None = None
    hq_city: str | None = None


class ResultsResponse(Task):
    """The task object plus one page of ``results`` (§6)."""

    results: list[Result] = Field(default_factory=list)


TaskList: TypeAdapter[list[Task]] = TypeAdapter(list[Task])


def parse(model: type[M] | TypeAdapter[M], data: Any, endpoint: str) -> M:
    """Validate ``data``; a mismatch becomes a typed protocol error naming the endpoint."""
    return parse_payload(model, data, provider=PROVIDER, endpoint=endpoint)


def _website(value: str | None) -> str | None:
    if not value:
        return None
    return value if "://" in value else f"https://{value}"


def company_from_result(result: Result) -> Company:
    """A result (§6) as a :class:`Company`; ``company_website`` is normalized to its domain."""
    return Company.trusted(  # every value comes typed from the validated wire model
        name=result.company_name, domain=normalize_domain(result.company_website),
        website=_website(result.company_website),
        description=result.company_description or result.company_full_description,
        founded_year=result.founding_year, employee_range=result.employee_count,
        hq_city=result.hq_city, hq_region=result.hq_state_province, hq_country=result.hq_country,
    )


def _evidence(result: Result, names: dict[str, str]) -> tuple[Evidence, ...]:
    items = []
    for key, score in result.scores.items():
        grade = score.get("grade")
        if grade is not None and not 1 <= grade <= 5:
            grade = None
        items.append(Evidence.trusted(kind="criterion", key=key, label=names.get(key), grade=grade,
                                      text=score.get("explanation"), source_urls=tuple(score.get("sources", ()))))
    return tuple(items)


def _dump(result: Result) -> dict[str, Any]:
    """The parsed fields of ``result`` as JSON (each score with all three keys, defaults filled in)."""
    doc = result.model_dump(mode="json")
    doc["scores"] = {key: {"grade": score.get("grade"), "explanation": score.get("explanation"),
                           "sources": list(score.get("sources", []))} for key, score in result.scores.items()}
    return doc


def hit_from_result(
    result: Result, *, rank: int, criteria_names: dict[str, str], retrieved_at: datetime,
    raw: dict[str, Any] | None = None,
) -> Hit:
    """One result as a :class:`Hit`: relevance/100 as score, each criterion's grade as evidence.

    ``raw`` is the result exactly as received (default: the parsed fields).
    """
    score = None
    if result.relevance is not None:
        score = min(max(result.relevance / 100.0, 0.0), 1.0)
    evidence = _evidence(result, criteria_names)
    urls = tuple(dict.fromkeys(url for item in evidence for url in item.source_urls))
    return Hit.trusted(provider=PROVIDER, provider_record_id=result.id, job_id=result.task_id, rank=rank,
                       score=score, entity=company_from_result(result), evidence=evidence, source_urls=urls,
                       raw=raw if raw is not None else _dump(result), retrieved_at=retrieved_at)
