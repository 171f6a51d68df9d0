"""Sixtyfour's ground truth: people by ``raw_source.publicId`` (CSV: ``linkedin``); companies by
``raw_source.website_domain`` (CSV: ``website``), else the LinkedIn company slug."""

from __future__ import annotations

from typing import Any

from aggregator.models import Hit
from providers.sandbox.truth import host_of, linkedin_slug, lookup
from providers.sandbox.world import World

__all__ = ["true_id"]


def true_id(hit: Hit, world: World) -> str | None:
    """Sixtyfour: ``raw_source.publicId`` / ``linkedin`` (people); website domain, else LinkedIn company slug."""
    look = lookup(world)
    source = hit.raw.get("raw_source")
    row: dict[str, Any] = source if isinstance(source, dict) else hit.raw  # query row or CSV record
    if hit.entity.kind == "person":
        slug = linkedin_slug(row.get("publicId") or row.get("linkedin"), "/in/")
        return look.person_by_slug.get(slug) if slug else None
    domain = host_of(row.get("website_domain") or row.get("website"))
    if domain and domain in look.company_by_domain:
        return look.company_by_domain[domain]
    slug = linkedin_slug(row.get("linkedin_url") or row.get("canonical_linkedin_url"), "/company/")
    return look.company_by_slug.get(slug) if slug else None
