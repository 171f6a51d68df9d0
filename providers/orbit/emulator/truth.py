"""Orbit's ground truth: the profile id (``orb_<12 hex>`` from :func:`~.index.profile_id_for`, or the
alias ``orbit_<slug>``), else the LinkedIn profile its sections cite, else ``profileUrl``
(``https://orbitsearch.com/<slug>``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from aggregator.models import Hit
from providers.orbit.emulator.index import profile_id_for
from providers.sandbox.truth import host_of, linkedin_slug, lookup
from providers.sandbox.world import World

__all__ = ["true_id"]


@functools.lru_cache(maxsize=4)
def _people_by_profile_id(world: World) -> dict[str, str]:
    return {profile_id_for(world.seed, p.true_id): p.true_id for p in world.people}


def _items(value: Any, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, dict) else None
    if isinstance(found, dict):
        return list(found.values())
    return found if isinstance(found, list) else []


def _orbit_urls(raw: dict[str, Any]) -> Iterable[Any]:
    """Every source URL cited by the profile's sections."""
    for section in _items(raw, "sections"):
        for item in _items(section, "items"):
            for source in _items(item, "sources"):
                yield source.get("url") if isinstance(source, dict) else source


def true_id(hit: Hit, world: World) -> str | None:
    """Orbit: the profile id (hashed or ``orbit_<slug>``), else a cited LinkedIn profile, else ``profileUrl``."""
    if hit.entity.kind != "person":
        return None
    profile_id = str(hit.raw.get("id") or hit.provider_record_id)
    look = lookup(world)
    by_profile_id = _people_by_profile_id(world)
    if profile_id in by_profile_id:
        return by_profile_id[profile_id]
    if profile_id.startswith("orbit_"):
        return look.person_by_slug.get(profile_id.removeprefix("orbit_").lower())
    for url in _orbit_urls(hit.raw):
        slug = linkedin_slug(url, "/in/") if isinstance(url, str) and "linkedin.com/in/" in url.lower() else None
        if slug and slug in look.person_by_slug:
            return look.person_by_slug[slug]
    profile_url = hit.raw.get("profileUrl")
    if isinstance(profile_url, str) and host_of(profile_url) == "orbitsearch.com":
        return look.person_by_slug.get(urlsplit(profile_url).path.strip("/").lower())
    return None
