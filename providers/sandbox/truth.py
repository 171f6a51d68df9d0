"""Ground truth for entity resolution on the sandbox: which world entity a hit describes, and scores.

:func:`true_id_of` reads a hit's *raw* payload (never the normalized entity the merge compares)
through the ``truth`` function its provider's :class:`~providers.spec.ProviderSpec` names, from the
identifiers that provider's emulator renders from the hidden world entity (each provider's own
``emulator/truth.py``); :func:`lookup` and the URL helpers here are what those functions share.

:func:`evaluate` scores merged records pairwise, the usual entity-resolution measure: over the hits
whose truth is known, a *predicted pair* is two hits in one record, a *true pair* two hits of one
entity; precision = correct predicted pairs / predicted pairs, recall = correct / true pairs.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aggregator.models import Hit, MergedRecord
from providers import REGISTRY
from providers.sandbox.world import World
from providers.spec import resolve

__all__ = [
    "Lookup",
    "ResolutionScores",
    "evaluate",
    "host_of",
    "linkedin_slug",
    "lookup",
    "true_id_of",
]


@dataclass(frozen=True, slots=True)
class Lookup:
    """The world's hidden ids by the identifiers emulators render (built once per world)."""

    person_by_slug: dict[str, str]
    company_by_domain: dict[str, str]
    company_by_slug: dict[str, str]


@functools.lru_cache(maxsize=4)
def lookup(world: World) -> Lookup:
    """The :class:`Lookup` of ``world`` (cached)."""
    return Lookup(
        person_by_slug={p.linkedin_slug.lower(): p.true_id for p in world.people},
        company_by_domain={c.domain.lower(): c.true_id for c in world.companies},
        company_by_slug={c.linkedin_slug.lower(): c.true_id for c in world.companies},
    )


def host_of(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower()
    host = urlsplit(text if "://" in text else "https://" + text).hostname or ""
    return host.removeprefix("www.") or None


def linkedin_slug(value: Any, marker: str) -> str | None:
    """``<slug>`` of a LinkedIn ``/in/<slug>`` or ``/company/<slug>`` URL, or of a bare slug."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower().split("?", 1)[0]
    if "linkedin.com" not in text:
        return text if "/" not in text else None
    _, found, rest = text.partition(marker)
    if not found:
        return None
    return rest.strip("/").split("/", 1)[0] or None


def true_id_of(hit: Hit, world: World) -> str | None:
    """The hidden ``true_id`` of the world entity ``hit`` describes; None when it cannot be told.

    Each provider's mapping is the ``truth`` function its :class:`~providers.spec.ProviderSpec` names.
    """
    spec = REGISTRY.get(hit.provider)
    if spec is None or spec.truth is None:
        return None
    mapping: Callable[[Hit, World], str | None] = resolve(spec.truth)
    return mapping(hit, world)


@dataclass(frozen=True, slots=True)
class ResolutionScores:
    """Pairwise entity-resolution scores of merged records against the world's hidden ids."""

    precision: float  # correct predicted pairs / predicted pairs (1.0 when nothing was merged)
    recall: float  # correct predicted pairs / true pairs (1.0 when no entity had two hits)
    f1: float
    hits: int  # hits evaluated
    records: int  # distinct records those hits landed in
    true_entities: int  # distinct hidden ids among the resolved hits
    unresolved_hits: int  # hits whose hidden id could not be told (left out of the pairs)
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int
    mixed_records: tuple[str, ...]  # record ids holding more than one entity (false merges)
    split_entities: tuple[str, ...]  # hidden ids spread over several records (missed merges)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _hit_key(hit: Hit) -> tuple[str, str, str, int, str]:
    return hit.provider, hit.provider_record_id, hit.job_id or "", hit.rank, hit.retrieved_at.isoformat()


def evaluate(hits: Sequence[Hit], records: Sequence[MergedRecord], world: World) -> ResolutionScores:
    """Score ``records`` on ``hits`` (usually every hit of every record); see the module docstring.

    A hit found in no record counts as a record of its own.
    """
    placed: dict[tuple[str, str, str, int, str], str] = {}
    for record in records:
        for hit in record.hits:
            placed.setdefault(_hit_key(hit), record.record_id)
    truth = [(placed.get(_hit_key(h), f"unplaced:{n}"), true_id_of(h, world)) for n, h in enumerate(hits)]
    known = [(record_id, true_id) for record_id, true_id in truth if true_id is not None]
    by_record = Counter(record_id for record_id, _ in known)
    by_truth = Counter(true_id for _, true_id in known)
    by_both = Counter(known)
    predicted = sum(_pairs(n) for n in by_record.values())
    true = sum(_pairs(n) for n in by_truth.values())
    correct = sum(_pairs(n) for n in by_both.values())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    records_of = Counter(record_id for record_id, _ in by_both)
    truths_of = Counter(true_id for _, true_id in by_both)
    return ResolutionScores(
        precision=precision, recall=recall, f1=f1, hits=len(hits),
        records=len({record_id for record_id, _ in truth}), true_entities=len(by_truth),
        unresolved_hits=len(truth) - len(known), predicted_pairs=predicted, true_pairs=true,
        correct_pairs=correct, mixed_records=tuple(sorted(r for r, n in records_of.items() if n > 1)),
        split_entities=tuple(sorted(t for t, n in truths_of.items() if n > 1)),
    )
