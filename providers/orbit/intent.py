"""Orbit's structured DSL v1 (``structuredIntent``): translation from a request, and validation.

Follows contract ``orbit.md`` §7. :func:`intent_for` builds the intent a request sends:

1. a raw ``structured_intent`` given by the user is used as-is (the adapter refuses it together with
   structured fields);
2. otherwise structured fields map directly, the values of one field OR-ed, the fields AND-ed: titles ->
   one ``experiences[]`` entry's ``title`` with every title and its synonyms in ``titleAnyOf``;
   a company -> that entry's ``organization``; a location -> ``geo.place``; schools -> one
   ``schools[]`` entry (``school`` + ``schoolAnyOf``). The DSL has no OR form for organizations or
   places (``organization`` and ``geo.place`` hold one value, ``experiences[]`` entries must all hold,
   and ``semanticClauses[].anyOf`` lists aliases of one concept, §7), so a second company or location
   cannot be expressed: :func:`inexpressible` names the field, and the adapter refuses it (or skips
   Orbit) before any call. Fields refine a query that is not a placeholder: the query is translated
   as in 3., and each field replaces what the query said about the same thing (its title,
   organization, place); the rest of the query (its ``semanticClauses``) still applies;
3. otherwise the natural-language query is split on its connectors: the leading role phrase is a
   title ("VPs of Engineering" -> "VP of Engineering"), ``in <place>`` is ``geo.place``,
   ``at <Org>`` an organization unless it reads as a description of companies ("at Series B SaaS
   startups"), and every other phrase becomes a ``semanticClauses`` entry.

:func:`validate_intent` checks the DSL rules before any call and raises
:class:`~aggregator.errors.ConfigError` naming the path and the rule (with Orbit's error code),
e.g. ``structured_intent.version: must be "v1" (structured_intent_version_unsupported)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aggregator.errors import ConfigError
from aggregator.models import SearchRequest

__all__ = ["inexpressible", "intent_for", "translate_query", "validate_intent"]

TOP_KEYS = {"version", "names", "experiences", "schools", "semanticClauses", "geo", "demographics"}
SERVER_OWNED = {"resolvedCompanyFilters", "resolvedSchoolFilters", "resolvedEntityFilters"}
EXPERIENCE_KEYS = {"organization", "title", "titleAnyOf", "year", "startYear", "startYearLte", "endYear",
                   "temporalScope"}
SCHOOL_KEYS = {"school", "schoolAnyOf", "graduationYear", "startYear", "endYear", "temporalScope", "relation"}
TEMPORAL = {"current", "historical", "both"}
DISTANCE = re.compile(r"^\d+(\.\d+)?\s?(km|mi)$")

_CONNECTORS = re.compile(r"\s+(at|in|from|based in|located in|who|with|working at|working on)\s+", re.I)
_ROLE_WORDS = re.compile(
    r"\b(ceos?|ctos?|cfos?|coos?|cmos?|cpos?|cisos?|founders?|co-?founders?|vps?|vice presidents?|"
    r"heads?|directors?|managers?|engineers?|developers?|designers?|scientists?|recruiters?|executives?|analysts?|"
    r"partners?|leads?|officers?|architects?|researchers?|marketers?|consultants?)\b", re.I)
_COMPANY_DESCRIPTORS = re.compile(
    r"\b(startups?|companies|company|firms?|businesses|scale-?ups?|enterprises?|saas|b2b|b2c|series [a-e]|"
    r"seed|stage|funded|public|private|agencies|fintech|healthtech|vertical|smb|mid-?market)\b", re.I)
_TITLE_SYNONYMS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], list[str]]]] = [
    (re.compile(r"^(?:vp|vice president)(?: of|,)? (.+)$", re.I),
     lambda m: [f"VP of {m[1]}", f"VP {m[1]}", f"Vice President of {m[1]}"]),
    (re.compile(r"^head of (.+)$", re.I), lambda m: [f"Head of {m[1]}"]),
    (re.compile(r"^director of (.+)$", re.I), lambda m: [f"Director of {m[1]}", f"{m[1]} Director"]),
    (re.compile(r"^cto$", re.I), lambda m: ["CTO", "Chief Technology Officer"]),
    (re.compile(r"^ceo$", re.I), lambda m: ["CEO", "Chief Executive Officer"]),
    (re.compile(r"^cfo$", re.I), lambda m: ["CFO", "Chief Financial Officer"]),
    (re.compile(r"^coo$", re.I), lambda m: ["COO", "Chief Operating Officer"]),
]


def _singular_title(phrase: str) -> str:
    """``VPs of Engineering`` -> ``VP of Engineering``; ``CTOs`` -> ``CTO``; ``engineers`` -> ``Engineer``."""
    words = phrase.split()
    head = len(words) - 1 if " of " not in f" {phrase.lower()} " else words.index(
        next(w for w in words if w.lower() == "of")) - 1
    word = words[head]
    plural = len(word) > 3 and word.lower().endswith("s") and not word.lower().endswith("ss")
    if plural or re.fullmatch(r"(?i)vps", word):
        words[head] = word[:-1]
    small = {"of", "and", "the", "for", "&"}
    cased = [w if not w.islower() or w in small else w[:1].upper() + w[1:] for w in words]
    title = " ".join(cased)
    return re.sub(r"(?i)^(vp|ceo|cto|cfo|coo|cmo|cpo|ciso)\b", lambda m: m[1].upper(), title)


def _title_entry(title: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"title": title, "temporalScope": "current"}
    for pattern, expand in _TITLE_SYNONYMS:
        match = pattern.match(title.strip())
        if match:
            synonyms = [s for s in dict.fromkeys(expand(match)) if s.lower() != title.lower()]
            if synonyms:
                entry["titleAnyOf"] = [title, *synonyms]
            break
    return entry


def translate_query(query: str) -> dict[str, Any]:
    """A natural-language query as a ``structuredIntent`` v1 (see the module docstring)."""
    parts = _CONNECTORS.split(f" {query.strip()} ")
    lead, pairs = parts[0].strip(), list(zip(parts[1::2], parts[2::2], strict=False))
    experiences: list[dict[str, Any]] = []
    clauses: list[str] = []
    place: str | None = None
    if lead and _ROLE_WORDS.search(lead):
        experiences.append(_title_entry(_singular_title(lead)))
    elif lead:
        clauses.append(lead)
    for connector, text in pairs:
        text = text.strip(" ,.;")
        if not text:
            continue
        kind = connector.lower()
        if kind in ("in", "based in", "located in", "from") and place is None \
                and not _COMPANY_DESCRIPTORS.search(text):
            place = text
        elif kind in ("at", "working at") and not _COMPANY_DESCRIPTORS.search(text) and text[:1].isupper():
            if experiences and "organization" not in experiences[-1]:
                experiences[-1]["organization"] = text
            else:
                experiences.append({"organization": text, "temporalScope": "current"})
        else:
            clauses.append(text if kind in ("at", "in", "from") else f"{kind} {text}")
    intent: dict[str, Any] = {"version": "v1"}
    if experiences:
        intent["experiences"] = experiences
    if place:
        intent["geo"] = {"place": place}
    if clauses:
        intent["semanticClauses"] = [{"text": text} for text in clauses]
    return intent


def inexpressible(request: SearchRequest) -> ConfigError | None:
    """Why the structured fields of ``request`` cannot be one ``structuredIntent`` (None: they can)."""
    if len(request.companies) > 1:
        return ConfigError("companies", "Orbit's structuredIntent names one organization per experience and every "
                                        "experience must hold, so it cannot ask for people at any of "
                                        f"{len(request.companies)} companies: give Orbit one company, or leave "
                                        "Orbit out (providers)")
    if len(request.locations) > 1:
        return ConfigError("locations", "Orbit's structuredIntent holds one place (geo.place) and no way to ask "
                                        f"for any of {len(request.locations)} places (semanticClauses anyOf lists "
                                        "aliases of one concept): give Orbit one location, or leave Orbit out "
                                        "(providers)")
    return None


def _titles(titles: tuple[str, ...]) -> dict[str, Any]:
    """One experience entry asking for any of ``titles`` (each with its synonyms)."""
    entry = _title_entry(titles[0])
    if len(titles) > 1:
        entry["titleAnyOf"] = list(dict.fromkeys(
            alias for title in titles for alias in _title_entry(title).get("titleAnyOf", [title])))
    return entry


def _experience(request: SearchRequest, from_query: list[dict[str, Any]]) -> dict[str, Any]:
    """The one experience of the fields, completed by the query's title or organization they do not give."""
    titled = next((e for e in from_query if e.get("title")), None)
    if request.titles:
        entry = _titles(request.titles)
    elif titled is not None:
        entry = {k: titled[k] for k in ("title", "temporalScope", "titleAnyOf") if k in titled}
    else:
        entry = {"temporalScope": "current"}
    organization = request.companies[0] if request.companies else next(
        (e["organization"] for e in from_query if e.get("organization")), None)
    if organization:
        entry["organization"] = organization
    return entry


def _structured(request: SearchRequest) -> dict[str, Any] | None:
    if not request.has_fields:
        return None
    refusal = inexpressible(request)
    if refusal is not None:
        raise refusal
    base: dict[str, Any] = {"version": "v1"} if request.query_is_placeholder else translate_query(request.query)
    intent: dict[str, Any] = {"version": "v1"}
    experiences: list[dict[str, Any]] = base.get("experiences", [])
    if request.titles or request.companies:
        experiences = [_experience(request, experiences)]
    if experiences:
        intent["experiences"] = experiences
    if request.locations:
        intent["geo"] = {"place": request.locations[0]}
    elif "geo" in base:
        intent["geo"] = base["geo"]
    if request.schools:
        school: dict[str, Any] = {"school": request.schools[0]}
        if len(request.schools) > 1:
            school["schoolAnyOf"] = list(request.schools)
        intent["schools"] = [school]
    if "semanticClauses" in base:
        intent["semanticClauses"] = base["semanticClauses"]
    return intent


def intent_for(request: SearchRequest, structured_intent: dict[str, Any] | None = None) -> dict[str, Any]:
    """The validated intent ``request`` sends to Orbit: the user's own ``structured_intent`` (Orbit's
    option), else one built from the structured fields (refining the query), else from the query.

    Raises:
        ConfigError: on DSL violations; or naming ``companies``/``locations`` when more values are given
            than the DSL can express (:func:`inexpressible`).
    """
    intent = structured_intent or _structured(request) or translate_query(request.query)
    validate_intent(intent)
    return intent


# -- validation ------------------------------------------------------------------------------
def _fail(path: str, rule: str, code: str = "structured_intent_invalid") -> ConfigError:
    return ConfigError(f"structured_intent{path}", f"{rule} ({code})")


def _strings(value: Any, path: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, "must be a list of non-empty strings")


def _check_keys(item: Any, allowed: set[str], path: str) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise _fail(path, "must be an object")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"is not a DSL v1 field (allowed: {', '.join(sorted(allowed))})")
    return item


def _check_years(item: Mapping[str, Any], path: str) -> None:
    for key, value in item.items():
        if ("year" in key.lower()) and not (isinstance(value, int) and 1900 <= value <= 2100):
            raise _fail(f"{path}.{key}", "must be a year between 1900 and 2100")


def _check_entries(intent: Mapping[str, Any], key: str, allowed: set[str], main: str) -> None:
    entries = intent.get(key)
    if entries is None:
        return
    if not isinstance(entries, list) or not entries:
        raise _fail(f".{key}", "must be a non-empty list of objects")
    for i, raw in enumerate(entries):
        path = f".{key}[{i}]"
        item = _check_keys(raw, allowed, path)
        if item.get("temporalScope", "current") not in TEMPORAL:
            raise _fail(f"{path}.temporalScope", "must be one of current, historical, both")
        for field in (main, f"{main}AnyOf") if key == "schools" else ("organization", "title"):
            if field in item and not isinstance(item[field], list | str):
                raise _fail(f"{path}.{field}", "must be a string")
        for list_field in ("titleAnyOf", "schoolAnyOf"):
            if list_field in item:
                _strings(item[list_field], f"{path}.{list_field}")
        if not any(item.get(f) for f in allowed if f not in ("temporalScope", "relation")):
            raise _fail(path, "needs at least one criterion (e.g. title, organization, school)")
        _check_years(item, path)


def _check_range(value: Any, path: str) -> None:
    if not (isinstance(value, dict) and set(value) == {"min", "max"}
            and all(isinstance(value[k], int) for k in ("min", "max")) and value["min"] <= value["max"]):
        raise _fail(path, "needs integer min and max with min <= max")


def _check_geo_and_demographics(intent: Mapping[str, Any]) -> None:
    if "geo" in intent:
        geo = _check_keys(intent["geo"], {"place", "distance", "isHistorical"}, ".geo")
        if not isinstance(geo.get("place"), str) or not geo["place"].strip():
            raise _fail(".geo.place", "must be a non-empty string")
        if "distance" in geo and not (isinstance(geo["distance"], str) and DISTANCE.match(geo["distance"])):
            raise _fail(".geo.distance", 'must look like "50km" or "30mi"')
        if "isHistorical" in geo and not isinstance(geo["isHistorical"], bool):
            raise _fail(".geo.isHistorical", "must be true or false")
    if "demographics" in intent:
        demo = _check_keys(intent["demographics"], {"ageRange", "birthYearRange", "gender"}, ".demographics")
        for key in ("ageRange", "birthYearRange"):
            if key in demo:
                _check_range(demo[key], f".demographics.{key}")


def validate_intent(intent: Any) -> None:
    """Check ``intent`` against DSL v1 as Deep Search accepts it (contract §7, §3.1).

    Raises:
        ConfigError: naming the path and the rule, with Orbit's error code.
    """
    if not isinstance(intent, dict):
        raise _fail("", "must be an object", "structured_intent_required")
    if intent.get("version") != "v1":
        raise _fail(".version", 'must be "v1"', "structured_intent_version_unsupported")
    if "personalization" in intent:
        raise _fail(".personalization", "is not supported by Deep Search (use search)",
                    "developer_deep_search_personalization_unsupported")
    if "entityClauses" in intent:
        raise _fail(".entityClauses", "are not part of the public DSL",
                    "structured_intent_entity_clauses_unsupported")
    owned = sorted(SERVER_OWNED & set(intent))
    if owned:
        raise _fail(f".{owned[0]}", "is set by the server", "structured_intent_server_owned_field")
    _check_keys(intent, TOP_KEYS, "")
    if "names" in intent:
        _strings(intent["names"], ".names")
    _check_entries(intent, "experiences", EXPERIENCE_KEYS, "title")
    _check_entries(intent, "schools", SCHOOL_KEYS, "school")
    for i, clause in enumerate(intent.get("semanticClauses") or []):
        item = _check_keys(clause, {"text", "anyOf"}, f".semanticClauses[{i}]")
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            raise _fail(f".semanticClauses[{i}].text", "must be a non-empty string")
        if "anyOf" in item:
            _strings(item["anyOf"], f".semanticClauses[{i}].anyOf")
    _check_geo_and_demographics(intent)
    if set(intent) == {"version"}:
        raise _fail("", "needs at least one criterion besides version")
