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
    "ClusterScores",
    "Lookup",
    "ResolutionScores",
    "evaluate",
    "host_of",
    "linkedin_slug",
    "lookup",
    "score_clusters",
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
    """The :class:`Lookup` of ``world`` (cached); a hard world's other domains and LinkedIn slugs
    (renames, country-code domains, slug history) map to their company too."""
    plan = world.disagreements
    return Lookup(
        person_by_slug={p.linkedin_slug.lower(): p.true_id for p in world.people},
        company_by_domain={c.domain.lower(): c.true_id for c in world.companies} | plan.domain_aliases,
        company_by_slug={c.linkedin_slug.lower(): c.true_id for c in world.companies} | plan.slug_aliases,
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


@dataclass(frozen=True, slots=True)
class ClusterScores:
    """Pairwise and B-cubed precision / recall / F1 of one clustering over one set of hits (0..1)."""

    hits: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float  # pairwise: correct / predicted pairs (1.0 with none predicted)
    recall: float  # pairwise: correct / true pairs (1.0 with none true)
    f1: float
    b3_precision: float  # B-cubed: mean over hits of |own record & own entity| / |own record|
    b3_recall: float  # B-cubed: mean over hits of |own record & own entity| / |own entity|
    b3_f1: float


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_clusters(truth: Sequence[str], predicted: Sequence[str],
                   kinds: Callable[[str], tuple[str, ...]] = lambda _: ()) -> dict[str, ClusterScores]:
    """Scores of a clustering, overall (``"all"``), per kind and for untouched entities (``"none"``).

    ``truth[i]`` is hit ``i``'s hidden id, ``predicted[i]`` the id of the cluster (record) a resolver put
    it in; ``kinds(true_id)`` the disagreement kinds touching an entity
    (:meth:`~providers.sandbox.disagreements.Disagreements.kinds_of`). A kind's pairwise scores count the
    pairs with at least one hit of an entity it touches; its B-cubed scores average over those hits.

    Raises:
        ValueError: ``truth`` and ``predicted`` differ in length.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted must have one entry per hit")
    labels = {t: kinds(t) or ("none",) for t in dict.fromkeys(truth)}
    names = ["all", *sorted({k for ks in labels.values() for k in ks})]
    by_pred = Counter(predicted)
    by_true = Counter(truth)
    by_both = Counter(zip(predicted, truth, strict=True))
    return {name: _kind_scores(name, labels, predicted, truth, by_pred, by_true, by_both) for name in names}


def _kind_scores(name: str, labels: dict[str, tuple[str, ...]], predicted: Sequence[str], truth: Sequence[str],
                 by_pred: Counter[str], by_true: Counter[str], by_both: Counter[tuple[str, str]]) -> ClusterScores:
    """:func:`score_clusters` for one kind (``"all"``: every hit)."""
    def touched(true_id: str) -> bool:
        return name == "all" or name in labels[true_id]

    # pairs with a touched hit = all pairs of a group - pairs among its untouched hits
    untouched_pred: Counter[str] = Counter()
    untouched_true: Counter[str] = Counter()
    untouched_both: Counter[tuple[str, str]] = Counter()
    for (p, t), n in by_both.items():
        if not touched(t):
            untouched_pred[p] += n
            untouched_true[t] += n
            untouched_both[(p, t)] += n

    def pairs(counter: Counter[Any], untouched: Counter[Any]) -> int:
        return sum(_pairs(n) for n in counter.values()) - sum(_pairs(n) for n in untouched.values())

    predicted_pairs = pairs(by_pred, untouched_pred)
    true_pairs = pairs(by_true, untouched_true)
    correct = pairs(by_both, untouched_both)
    members = [(p, t) for p, t in zip(predicted, truth, strict=True) if touched(t)]
    b3p = sum(by_both[pt] / by_pred[pt[0]] for pt in members) / len(members) if members else 1.0
    b3r = sum(by_both[pt] / by_true[pt[1]] for pt in members) / len(members) if members else 1.0
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    return ClusterScores(
        hits=len(members), true_pairs=true_pairs, predicted_pairs=predicted_pairs, correct_pairs=correct,
        precision=precision, recall=recall, f1=_f1(precision, recall),
        b3_precision=b3p, b3_recall=b3r, b3_f1=_f1(b3p, b3r))
