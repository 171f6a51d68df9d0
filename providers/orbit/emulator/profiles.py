"""Orbit profile documents rendered from world people (contract §5 profile read).

:func:`profile_payload` renders ``payload`` of ``GET /v2/developer/profiles/{id}``::

    {"id": "orb_1a2b3c4d5e6f", "displayName": "Jane Doe", "personName": "Jane Doe",
     "aliases": ["J. Doe"], "avatarUrl": "https://images.orbitsearch.com/...", "verified": true,
     "profileUrl": "https://orbitsearch.com/jane-doe-4821",
     "location": {"city": "New York, NY, US"},
     "headline": {"jobTitle": "VP of Engineering", "companyName": "Acme", "schoolName": "..."},
     "sections": {"basic": {"items": [...]}, "personalLife": null, "images": {...}, ...}}

Every standard section key is always present, an object with ``items`` or ``null`` (DOC);
contribution sections appear only when data exists (``githubRepos`` for people with a GitHub
username, full profiles only). Items are ``{kind, title, ..., sources: [{url, name, title}]}``
(INF §5: item schemas are UNK): jobs cite the LinkedIn profile and the company website.

What a profile holds depends on its :class:`~.runs.Level`: basic (``basic`` only, no
avatar), partial (+ ``images``, ``jobs``, ``education``), full (+ ``passions``,
``accomplishments``, ``bestQualities``, ``githubRepos``). The world has nothing for
``personalLife``, ``worldview``, ``controversies``, ``netWorth``, ``portfolio``, ``families``:
they stay ``null`` (DOC: unmaterialized sections are null).
"""

from __future__ import annotations

from typing import Any

from providers.orbit.emulator.runs import Level
from providers.sandbox.entities import CompanyEntity, PersonEntity
from providers.sandbox.world import World

__all__ = ["STANDARD_SECTIONS", "materialized_count", "profile_payload", "render_sections"]

STANDARD_SECTIONS = ("basic", "personalLife", "images", "jobs", "education", "passions", "worldview",
                     "accomplishments", "controversies", "bestQualities", "netWorth", "portfolio",
                     "families")  # fmt: skip
_QUALITIES = {
    "Leadership": ("Builds teams that outlast any single product", "Clear long-term vision"),
    "Engineering": ("Ships reliable systems under pressure", "Mentors engineers generously"),
    "Sales": ("Turns skeptical buyers into references", "Relentless follow-through"),
    "Marketing": ("Tells a crisp product story", "Data-driven experimenter"),
    "Product": ("Deep customer empathy", "Ruthless prioritization"),
}
_DEFAULT_QUALITIES = ("Dependable collaborator", "Curious and quick to learn")

Source = dict[str, str]
Section = dict[str, Any] | None


def _linkedin(p: PersonEntity, c: CompanyEntity) -> Source:
    return {"url": f"https://www.linkedin.com/in/{p.linkedin_slug}", "name": "LinkedIn",
            "title": f"{p.full_name} - {p.title} - {c.name} | LinkedIn"}  # fmt: skip


def _website(c: CompanyEntity) -> Source:
    return {"url": f"https://{c.domain}", "name": c.name, "title": f"About {c.name}"}


def _github(p: PersonEntity) -> Source:
    user = p.github_username or ""
    title = f"{user} ({p.full_name}) - GitHub"
    return {"url": f"https://github.com/{user}", "name": "GitHub", "title": title}


def _place(p: PersonEntity) -> str:
    return f"{p.city}, {p.state}" if p.state else f"{p.city}, {p.country}"


def _basic(p: PersonEntity, c: CompanyEntity) -> Section:
    items: list[dict[str, Any]] = []
    if p.school:
        items.append({"kind": "school", "title": f"Studied at {p.school}", "school": p.school,
                      "sources": [_linkedin(p, c)]})  # fmt: skip
    items.append({"kind": "location", "title": _place(p), "location": _place(p),
                  "sources": [_linkedin(p, c)]})  # fmt: skip
    return {"items": items}


def _images(p: PersonEntity, c: CompanyEntity, profile_id: str) -> Section:
    items = [{"id": "image-1", "imageUrl": avatar_url(profile_id), "role": "primary",
              "type": "default", "question": "profile photo", "sources": [_linkedin(p, c)]}]
    if p.github_username:
        items.append({"id": "image-2", "imageUrl": f"https://avatars.githubusercontent.com/{p.github_username}",
                      "role": "social_media", "type": "default", "question": "GitHub avatar",
                      "sources": [_github(p)]})  # fmt: skip
    return {"items": items}


def _jobs(world: World, p: PersonEntity, c: CompanyEntity) -> Section:
    items = [{"kind": "job", "title": f"{p.title} at {c.name}", "jobTitle": p.title,
              "companyName": c.name, "companyDomain": c.domain, "isCurrent": True,
              "sources": [_linkedin(p, c), _website(c)]}]  # fmt: skip
    for previous_id in p.previous_company_ids:
        prev = world.company(previous_id)
        items.append({"kind": "job", "title": f"Previously at {prev.name}", "jobTitle": None,
                      "companyName": prev.name, "companyDomain": prev.domain, "isCurrent": False,
                      "sources": [_linkedin(p, c), _website(prev)]})  # fmt: skip
    return {"items": items}


def _education(p: PersonEntity, c: CompanyEntity) -> Section:
    if not p.school:
        return None
    return {"items": [{"kind": "education", "title": p.school, "school": p.school,
                       "sources": [_linkedin(p, c)]}]}  # fmt: skip


def _passions(p: PersonEntity, c: CompanyEntity) -> Section:
    return {"items": [{"kind": "passion", "title": skill, "sources": [_linkedin(p, c)]}
                      for skill in p.skills[:3]]} if p.skills else None  # fmt: skip


def _accomplishments(p: PersonEntity, c: CompanyEntity) -> Section:
    if not c.funding_rounds:
        return None
    last = c.funding_rounds[-1]
    title = f"{c.name} raised a {last.name} round of ${last.amount_usd / 1e6:.1f}M"
    return {"items": [{"kind": "accomplishment", "title": title, "date": last.announced_date,
                       "sources": [_website(c)]}]}  # fmt: skip


def _qualities(p: PersonEntity, c: CompanyEntity) -> Section:
    titles = _QUALITIES.get(p.job_function, _DEFAULT_QUALITIES)
    return {"items": [{"kind": "quality", "title": t, "sources": [_linkedin(p, c)]} for t in titles]}


def _repos(p: PersonEntity) -> Section:
    user = p.github_username or ""
    names = [f"{skill.lower().replace(' ', '-')}-playground" for skill in p.skills[:2]]
    return {"items": [{"kind": "github_repo", "title": f"{user}/{name}",
                       "url": f"https://github.com/{user}/{name}", "sources": [_github(p)]}
                      for name in names]}  # fmt: skip


def avatar_url(profile_id: str) -> str:
    """The (synthetic) avatar URL of a profile."""
    return f"https://images.orbitsearch.com/profiles/{profile_id}/avatar.jpg"


def _without_linkedin(sections: dict[str, Section], p: PersonEntity, c: CompanyEntity) -> dict[str, Section]:
    """``sections`` citing the employer's team page where they cite the LinkedIn profile (a hard world's
    stale job-change record that has no LinkedIn URL)."""
    team = {"url": f"https://{c.domain}/team", "name": c.name, "title": f"{p.full_name} - {c.name} team"}
    for section in sections.values():
        for item in section["items"] if section else ():
            item["sources"] = [team if "linkedin.com/in/" in s["url"] else s for s in item["sources"]]
    return sections


def render_sections(world: World, p: PersonEntity, profile_id: str, level: Level) -> dict[str, Section]:
    """``sections`` of a profile at ``level`` (standard keys always present, see module doc); in a hard
    world, a profile the plan has without a LinkedIn URL cites none
    (:meth:`~providers.sandbox.disagreements.Disagreements.has_linkedin`)."""
    cites_linkedin = world.disagreements.has_linkedin("orbit", p)
    p = world.person_view("orbit", p)  # the hard world's disagreements, if any
    c = world.company_view("orbit", world.company(p.company_id))
    sections: dict[str, Section] = dict.fromkeys(STANDARD_SECTIONS)
    sections["basic"] = _basic(p, c)
    if level >= Level.PARTIAL:
        sections.update(images=_images(p, c, profile_id), jobs=_jobs(world, p, c),
                        education=_education(p, c))  # fmt: skip
    if level >= Level.FULL:
        sections.update(passions=_passions(p, c), accomplishments=_accomplishments(p, c),
                        bestQualities=_qualities(p, c))  # fmt: skip
        if p.github_username:
            sections["githubRepos"] = _repos(p)
    return sections if cites_linkedin else _without_linkedin(sections, p, c)


def materialized_count(world: World, p: PersonEntity, profile_id: str, level: Level) -> int:
    """``section_generation.materialized_section_count``: generated (non-null) sections other
    than ``basic`` (INF §4.2; 0 for a basic-only profile, DOC "may contain only basic data")."""
    sections = render_sections(world, p, profile_id, level)
    return sum(1 for key, value in sections.items() if key != "basic" and value is not None)


def profile_payload(
    world: World, p: PersonEntity, profile_id: str, level: Level, *, verified: bool
) -> dict[str, Any]:
    """The ``payload`` of a profile read (shape in the module docstring)."""
    p = world.person_view("orbit", p)  # the hard world's disagreements, if any
    c = world.company_view("orbit", world.company(p.company_id))
    region = f"{p.city}, {p.state}, {p.country_iso2}" if p.state else f"{p.city}, {p.country_iso2}"
    return {
        "id": profile_id,
        "displayName": p.full_name,
        "personName": p.full_name,
        "aliases": [f"{p.first_name[:1]}. {p.last_name}"],
        "avatarUrl": avatar_url(profile_id) if level >= Level.PARTIAL else None,
        "profileUrl": f"https://orbitsearch.com/{p.linkedin_slug}",
        "verified": verified,
        "location": {"city": region},
        "headline": {"jobTitle": p.title, "companyName": c.name, "schoolName": p.school},
        "sections": render_sections(world, p, profile_id, level),
    }
