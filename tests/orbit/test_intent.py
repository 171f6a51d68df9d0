"""Natural language and structured fields to Orbit's structuredIntent v1, and DSL validation."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.errors import ConfigError
from aggregator.models import SearchRequest
from providers.orbit.intent import intent_for, translate_query, validate_intent


def test_the_demo_query_becomes_title_place_and_a_semantic_clause() -> None:
    intent = translate_query("VP of Engineering at Series B SaaS startups in New York")
    assert intent == {
        "version": "v1",
        "experiences": [{"title": "VP of Engineering", "temporalScope": "current",
                         "titleAnyOf": ["VP of Engineering", "VP Engineering",
                                        "Vice President of Engineering"]}],
        "geo": {"place": "New York"},
        "semanticClauses": [{"text": "Series B SaaS startups"}],
    }


@pytest.mark.parametrize(
    ("query", "title", "organization", "place", "clauses"),
    [
        ("CTOs at Stripe", "CTO", "Stripe", None, []),
        ("VPs of Sales in London", "VP of Sales", None, "London", []),
        ("software engineers in Berlin who write about developer tools", "Software Engineer", None, "Berlin",
         ["who write about developer tools"]),
        ("Head of Growth at fintech companies", "Head of Growth", None, None, ["fintech companies"]),
        ("data scientists at Acme Freight in austin", "Data Scientist", "Acme Freight", "austin", []),
        ("engineers in fintech", "Engineer", None, None, ["fintech"]),
    ],
)
def test_queries_split_into_titles_organizations_places_and_clauses(
    query: str, title: str, organization: str | None, place: str | None, clauses: list[str]
) -> None:
    intent = translate_query(query)
    experience = intent["experiences"][0]
    assert experience["title"] == title
    assert experience.get("organization") == organization
    assert intent.get("geo", {}).get("place") == place
    assert [c["text"] for c in intent.get("semanticClauses", [])] == clauses
    validate_intent(intent)


def test_structured_fields_win_over_the_query_and_a_raw_intent_wins_over_both() -> None:
    request = SearchRequest(query="anything", titles=("CTO",), companies=("Acme",), locations=("Austin",),
                            schools=("MIT",))
    intent = intent_for(request)
    assert intent["experiences"][0]["title"] == "CTO" and intent["experiences"][0]["organization"] == "Acme"
    assert intent["geo"] == {"place": "Austin"} and intent["schools"] == [{"school": "MIT"}]
    raw = {"version": "v1", "names": ["Ada Lovelace"]}
    assert intent_for(request, raw) == raw


@pytest.mark.parametrize(
    ("intent", "field", "code"),
    [
        ([], "structured_intent", "structured_intent_required"),
        ({"names": ["x"]}, "structured_intent.version", "structured_intent_version_unsupported"),
        ({"version": "v2", "names": ["x"]}, "structured_intent.version",
         "structured_intent_version_unsupported"),
        ({"version": "v1", "personalization": {"network": {"scope": "first_degree"}}},
         "structured_intent.personalization", "developer_deep_search_personalization_unsupported"),
        ({"version": "v1", "entityClauses": []}, "structured_intent.entityClauses",
         "structured_intent_entity_clauses_unsupported"),
        ({"version": "v1", "resolvedCompanyFilters": {}}, "structured_intent.resolvedCompanyFilters",
         "structured_intent_server_owned_field"),
        ({"version": "v1", "jobs": []}, "structured_intent.jobs", "structured_intent_invalid"),
        ({"version": "v1", "experiences": [{"title": "CTO", "temporalScope": "future"}]},
         "structured_intent.experiences[0].temporalScope", "structured_intent_invalid"),
        ({"version": "v1", "experiences": [{"company": "Acme"}]},
         "structured_intent.experiences[0].company", "structured_intent_invalid"),
        ({"version": "v1", "geo": {"place": "Austin", "distance": "far"}}, "structured_intent.geo.distance",
         "structured_intent_invalid"),
        ({"version": "v1", "demographics": {"ageRange": {"min": 40, "max": 30}}},
         "structured_intent.demographics.ageRange", "structured_intent_invalid"),
        ({"version": "v1", "semanticClauses": [{"anyOf": ["x"]}]},
         "structured_intent.semanticClauses[0].text", "structured_intent_invalid"),
        ({"version": "v1"}, "structured_intent", "structured_intent_invalid"),
    ],
)
def test_invalid_intents_are_rejected_naming_the_path_and_rule(intent: Any, field: str, code: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_intent(intent)
    assert info.value.field == field and code in info.value.problem


def test_a_documented_intent_is_valid() -> None:
    validate_intent({
        "version": "v1", "names": ["Sam Altman"],
        "experiences": [{"organization": "OpenAI", "title": "CEO", "temporalScope": "current"}],
        "schools": [{"school": "Stanford", "graduationYear": 2005}],
        "semanticClauses": [{"text": "writes about developer tools", "anyOf": ["devtools"]}],
        "geo": {"place": "San Francisco", "distance": "50km"},
        "demographics": {"ageRange": {"min": 30, "max": 50}, "gender": "male"},
    })
