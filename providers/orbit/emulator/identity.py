"""Which person a single-profile Deep Search run is about (contract §3.1, §4.4; INF).

Each identity signal of the start body is looked up in the :class:`~.index.PeopleIndex`
in this order: ``profileId``, ``linkedinUrl``, ``email``, ``phoneNumber``, ``urls``,
``usernames``. Signals that match nobody are ignored (the docs' own example pairs a LinkedIn URL
with a throwaway email). The run is about the one person the matching signals agree on; when
they point at different people the identity is not corroborated (INF). Only when no explicit
signal matched does ``structuredIntent`` decide, by its best single match (:mod:`.match`): its
structured clauses (names, experiences, schools, geo) must hold, its semantic phrases only rank
(DOC §7: each phrase is a separate matching signal, never a requirement).
No person -> the run ends ``failed`` with ``identity_not_corroborated`` (§4.4).

``candidate_discovery`` (§4.3, INF §11): every person passing the structured clauses is a
discovered cluster; Deep Search generates the clusters that match the semantic phrases, best
first, and skips (reports, never generates) those matching none of them, unless no cluster
matches any phrase (a phrase never empties a discovery). ``skip_unmatched=False`` generates every
cluster, best first.
"""

from __future__ import annotations

from providers.orbit.emulator.index import PeopleIndex
from providers.orbit.emulator.match import compile_intent, match_intent, ranked_matches
from providers.orbit.emulator.request import StartRequest
from providers.sandbox.entities import PersonEntity

__all__ = ["candidates_for", "resolve_person"]


def _signal_matches(index: PeopleIndex, request: StartRequest) -> list[PersonEntity | None]:
    found: list[PersonEntity | None] = []
    if request.profile_id:
        found.append(index.by_profile_id(request.profile_id))
    if request.linkedin_url:
        found.append(index.by_linkedin(request.linkedin_url))
    if request.email:
        found.append(index.by_email(request.email))
    if request.phone_number:
        found.append(index.by_phone(request.phone_number))
    found += [index.by_url(url) for url in request.urls]
    found += [index.by_username(name) for name in request.usernames]
    return found


def resolve_person(index: PeopleIndex, request: StartRequest) -> PersonEntity | None:
    """The person a single-profile run is about, or None (see the module docstring)."""
    matched = {p.true_id: p for p in _signal_matches(index, request) if p is not None}
    if len(matched) > 1:
        return None
    if matched:
        return next(iter(matched.values()))
    if request.structured_intent is None:
        return None
    best = match_intent(index, compile_intent(index, request.structured_intent), limit=1)
    return best[0] if best else None


def candidates_for(
    index: PeopleIndex, request: StartRequest, limit: int, *, skip_unmatched: bool = True,
) -> tuple[int, list[PersonEntity]]:  # fmt: skip
    """``(clusters discovered, people to generate best first)`` for the run's ``structuredIntent``
    (at most ``limit`` clusters; see the module docstring for which are generated)."""
    if request.structured_intent is None:
        return 0, []
    ranked = ranked_matches(index, compile_intent(index, request.structured_intent), limit=limit)
    if skip_unmatched and any(score > 0 for score, _ in ranked):
        return len(ranked), [p for score, p in ranked if score > 0]
    return len(ranked), [p for _, p in ranked]
