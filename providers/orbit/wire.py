"""Orbit's developer Deep Search wire format (private) and the pure functions that normalize it.

Follows contract ``orbit.md``: §3.3 start responses (flat; ``started`` / ``already_running`` /
``completed``, or a re-sent ``requestId``'s finished run in the status vocabulary), §4 status
(``running`` / ``generating_sections`` / ``completed`` / ``failed``; ``result`` with ``id`` +
``section_generation`` for single-profile shapes, or the growing
``candidate_profile_ids`` of ``candidate_discovery``; ``failure.code``), §5 the profile read
payload (``{"status": "success", "payload": {...}}`` with ``headline``, ``location``, ``sections``).
Wire models ignore unknown fields; payloads that do not fit raise
:class:`~aggregator.errors.ProviderProtocolError` naming the endpoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from aggregator.contract import parse_payload
from aggregator.merge import normalize_linkedin_url
from aggregator.models import Evidence, Hit, JsonObject, Person

__all__ = ["PROVIDER", "ProfilePayload", "ProfileResponse", "StartResponse", "StatusResponse",
           "hit_from_profile", "parse", "person_from_profile"]

PROVIDER = "orbit"
M = TypeVar("M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StartResponse(_Wire):
    request_id: str = Field(min_length=1)
    run_id: str | None = None
    status: str
    result: dict[str, Any] | None = None


class Failure(_Wire):
    code: str | None = None
    message: str | None = None


class StatusResult(_Wire):
    id: str | None = None
    section_generation: dict[str, Any] | None = None
    candidate_profile_ids: list[str] = Field(default_factory=list)
    candidate_count: int | None = None
    dispatched_candidate_count: int | None = None
    persisted_candidate_count: int | None = None
    current_phase: str | None = None


class StatusResponse(_Wire):
    request_id: str
    run_id: str | None = None
    status: str
    result: StatusResult | None = None
    failure: Failure | None = None


class Section(_Wire):
    items: list[JsonObject] = Field(default_factory=list)  # the item objects as received (not copied)


class Headline(_Wire):
    jobTitle: str | None = None
    companyName: str | None = None
    schoolName: str | None = None


class Location(_Wire):
    city: str | None = None


class ProfilePayload(_Wire):
    id: str = Field(min_length=1)
    displayName: str | None = None
    personName: str | None = None
    aliases: list[str] = Field(default_factory=list)
    profileUrl: str | None = None
    verified: bool | None = None
    location: Location | None = None
    headline: Headline | None = None
    sections: dict[str, Section | None] = Field(default_factory=dict)


class ProfileResponse(_Wire):
    status: str
    payload: ProfilePayload


def parse(model: type[M], data: Any, endpoint: str) -> M:
    """Validate ``data`` as ``model``; a mismatch becomes a typed protocol error."""
    return parse_payload(model, data, provider=PROVIDER, endpoint=endpoint)


def _source_urls(section: Section) -> list[str]:
    """The URLs of a section's items' ``sources`` (``[{"url"}]``, ``["url"]``; other shapes are ignored)."""
    urls = []
    for item in section.items:
        sources = item.get("sources")
        for source in sources if isinstance(sources, list) else [sources]:
            url = source.get("url") if isinstance(source, dict) else source
            if isinstance(url, str) and url:
                urls.append(url)
    return urls


def _section_urls(payload: ProfilePayload) -> dict[str, list[str]]:
    """Each materialized section's source URLs (sections that are null are left out)."""
    return {name: _source_urls(section) for name, section in payload.sections.items() if section is not None}


def _split_location(text: str | None) -> tuple[str | None, str | None, str | None]:
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if len(parts) >= 3:
        return parts[0], parts[1], parts[-1]
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return (parts[0] if parts else None), None, None


def person_from_profile(payload: ProfilePayload, section_urls: dict[str, list[str]] | None = None) -> Person:
    """A profile (§5) as a :class:`Person`; the LinkedIn URL comes from the sections' sources
    (``section_urls``: :func:`_section_urls` of ``payload``, when the caller has it already)."""
    by_section = _section_urls(payload) if section_urls is None else section_urls
    urls = [url for section in by_section.values() for url in section]
    linkedin = next((u for u in map(normalize_linkedin_url, urls) if u and "/in/" in u), None)
    github = next((u.rstrip("/").rsplit("/", 1)[-1] for u in urls if "github.com/" in u), None)
    full = payload.personName or payload.displayName
    first, _, last = (full or "").partition(" ")
    headline = payload.headline or Headline()
    place = payload.location.city if payload.location else None
    city, region, country = _split_location(place)
    return Person.trusted(  # every value is text or None, from the validated wire model
        full_name=full, first_name=first or None, last_name=last or None, title=headline.jobTitle,
        company_name=headline.companyName, school=headline.schoolName,
        location=place, city=city, region=region, country=country, linkedin_url=linkedin, github_username=github,
    )


def _evidence(payload: ProfilePayload, section_urls: dict[str, list[str]]) -> tuple[Evidence, ...]:
    items = []
    for name, section in payload.sections.items():
        if section is None or not section.items:
            continue
        titles = [str(i.get("title")) for i in section.items[:3] if i.get("title")]
        text = "; ".join(titles) or f"{len(section.items)} item{'s' if len(section.items) > 1 else ''}"
        items.append(Evidence.trusted(kind="signal", key=name, label=name, text=text,
                                      source_urls=tuple(dict.fromkeys(section_urls[name]))))
    return tuple(items)


def hit_from_profile(payload: ProfilePayload, *, rank: int, job_id: str | None, retrieved_at: datetime,
                     raw: dict[str, Any] | None = None) -> Hit:
    """A profile as a :class:`Hit`; every materialized section is kept as evidence."""
    section_urls = _section_urls(payload)
    person = person_from_profile(payload, section_urls)
    urls = tuple(u for u in (payload.profileUrl, person.linkedin_url) if u)
    return Hit.trusted(provider=PROVIDER, provider_record_id=payload.id, job_id=job_id, rank=rank, entity=person,
                       evidence=_evidence(payload, section_urls), source_urls=urls,
                       raw=raw if raw is not None else payload.model_dump(mode="json"), retrieved_at=retrieved_at)
