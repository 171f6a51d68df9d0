"""Candidate pools and domain exclusions of the Extruct emulator (contract §3.1, §4).

**Exclusions** (DOC CREATE): ``exclude_domains`` takes domains or URLs and the server keeps their
registered domains, de-duplicated and sorted (``https://www.Acme.com/about`` -> ``acme.com``).
The registered domain comes from the public-suffix list bundled with ``tldextract`` (offline).
INF: an entry without a registrable domain (``localhost``, ``acme``) is a 422.

**Pool** (INF): what the "discovery" stage finds for a query. The query is parsed with
:func:`providers.sandbox.matching.parse_query`; every world company visible to Extruct
(``world.visible("extruct", id)``) and not excluded is checked against its constraints
(:func:`.grading.check_company`). Companies meeting all of them are *matches*, those
meeting at least half are *near misses* (they pass the pre-filter and evaluation rejects them),
the rest is web-search *noise* (a share passes the pre-filter, then fails evaluation). The pool
samples these tiers (matches first in expectation) in a deterministic order per task.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import tldextract

from providers.extruct.emulator.grading import (
    check_company,
    company_words,
    share_satisfied,
    stable_fraction,
)
from providers.sandbox.entities import CompanyEntity
from providers.sandbox.matching import QuerySpec, parse_query
from providers.sandbox.world import World

__all__ = ["Candidate", "build_pool", "registered_domain"]

MATCH_SHARE = 0.6  # INF: at most this share of the pool are full matches
NEAR_SHARE = 0.25  # INF: at most this share of the pool are near misses


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() -> the bundled PSL snapshot, never the network; no disk cache.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(value: str) -> str | None:
    """The lower-case registered domain of a domain or URL, or None if it has none."""
    text = value.strip().lower()
    try:
        host = urlsplit(text if "//" in text else "//" + text).hostname
    except ValueError:
        return None
    if not host:
        return None
    parts = _extractor()(host)
    if not parts.domain or not parts.suffix:
        return None
    return f"{parts.domain}.{parts.suffix}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One discovered company. ``tier`` is ``match|near|noise``; ``passes`` = survives the
    relevance pre-filter and gets enriched (then evaluated)."""

    company: CompanyEntity
    tier: str
    passes: bool


Tiers = dict[str, list[CompanyEntity]]
TIERS_KEPT = 64  # (world, query, exclusions) splits kept: each costs a pass over every company


def _tiers(world: World, spec: QuerySpec, companies: Iterable[CompanyEntity]) -> Tiers:
    """Split ``companies`` into ``match`` / ``near`` / ``noise`` for the query ``spec``."""
    tiers: dict[str, list[CompanyEntity]] = {"match": [], "near": [], "noise": []}
    keywords = set(spec.keywords)
    for c in companies:
        checks = check_company(world, spec, c)
        if checks:
            share = share_satisfied(checks)
            tier = "match" if share == 1 else "near" if share >= 0.5 and len(checks) > 1 else "noise"
        else:  # keyword-only query: matched on the company's own words
            hits = len(keywords & company_words(c))
            tier = "match" if keywords and hits >= len(keywords) / 2 else "near" if hits else "noise"
        tiers[tier].append(c)
    return tiers


@functools.lru_cache(maxsize=TIERS_KEPT)
def _visible_tiers(world: World, query: str, excluded: frozenset[str]) -> Tiers:
    """The tiers of every company Extruct sees, minus ``excluded`` (worlds are immutable: cached, so
    a repeated query does not block the event loop it shares with the client for tens of ms)."""
    visible = (c for c in world.companies
               if world.visible("extruct", c.true_id) and c.domain not in excluded)  # fmt: skip
    return _tiers(world, parse_query(query, "company"), visible)


def build_pool(
    world: World, query: str, *, task_key: str, excluded: frozenset[str], max_size: int,
    noise_share: float, noise_pass_rate: float,
) -> tuple[Candidate, ...]:  # fmt: skip
    """The discovery order of one task's candidates (deterministic for ``task_key``)."""
    rng = random.Random(f"extruct:pool:{world.seed}:{task_key}")
    tiers = _visible_tiers(world, query, excluded)
    n_match = min(len(tiers["match"]), int(max_size * MATCH_SHARE))
    n_near = min(len(tiers["near"]), max(5, n_match // 2), int(max_size * NEAR_SHARE))
    n_noise = min(len(tiers["noise"]), max(5, round(noise_share * (n_match + n_near))),
                  max_size - n_match - n_near)  # fmt: skip
    picked = [
        *(Candidate(c, "match", True) for c in rng.sample(tiers["match"], n_match)),
        *(Candidate(c, "near", True) for c in rng.sample(tiers["near"], n_near)),
        *(Candidate(c, "noise", stable_fraction(task_key, c.true_id) < noise_pass_rate)
          for c in rng.sample(tiers["noise"], max(0, n_noise))),
    ]
    # Web discovery finds strong candidates earlier on average, never strictly first.
    keys = [rng.random() * (1.0 if cand.tier == "match" else 1.6) for cand in picked]
    order = sorted(range(len(picked)), key=lambda i: keys[i])
    return tuple(picked[i] for i in order)
