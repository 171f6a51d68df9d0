"""Extruct's ground truth: a result's ``company_website`` (a bare domain, sometimes with ``www.`` or a scheme)."""

from __future__ import annotations

from aggregator.models import Company, Hit
from providers.sandbox.truth import host_of, lookup
from providers.sandbox.world import World

__all__ = ["true_id"]


def true_id(hit: Hit, world: World) -> str | None:
    """Extruct: the ``company_website`` domain."""
    if not isinstance(hit.entity, Company):
        return None
    domain = host_of(hit.raw.get("company_website"))
    return lookup(world).company_by_domain.get(domain) if domain else None
