"""Client-side validation of Sixtyfour filters against filter-capabilities (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.errors import ConfigError
from aggregator.models import FilterCapabilities, FilterField
from providers.sixtyfour.filter_ops import DOCUMENTED_OPERATORS
from providers.sixtyfour.filters import check_dsl_filters, check_simple_filters

CAPS = FilterCapabilities(
    provider="sixtyfour", mode="company", operators=DOCUMENTED_OPERATORS,
    nested_paths=("funding_rounds", "company_updates"),
    limits={"max_query_depth": 4, "max_clause_count": 10, "max_terms_per_clause": 3, "max_sort_clauses": 2,
            "max_string_length": 50},
    fields=(
        FilterField(field="hq_country_iso2", field_type="keyword", supports_top_values=True),
        FilterField(field="employees_count", field_type="long", sortable=True, rangeable=True,
                    supports_top_values=True),
        FilterField(field="last_funding_round_amount_raised", field_type="long", sortable=True, rangeable=True),
        FilterField(field="categories_and_keywords", field_type="text"),
        FilterField(field="description", field_type="text"),
        FilterField(field="website_domain", field_type="keyword"),
        FilterField(field="funding_rounds", field_type="nested"),
        FilterField(field="funding_rounds.name", field_type="keyword", nested_path="funding_rounds"),
        FilterField(field="company_updates.description", field_type="text", nested_path="company_updates"),
    ),
)

DOCUMENTED_SIMPLE = [  # the seed's examples (contract §2.5)
    {"hq_country_iso2": {"$eq": "US"}},
    {"hq_country_iso2": {"$eq": "US"}, "employees_count": {"$gte": 4}},
    {"$and": [{"hq_country_iso2": {"$eq": "US"}}, {"employees_count": {"$gte": 4}},
              {"company_updates.description": {"$match": "(YC X25)"}}]},
    {"hq_country_iso2": {"$eq": "US"}, "$sort": [{"employees_count": "desc"}], "$limit": 8},
    {"$and": [{"hq_country_iso2": {"$eq": "CA"}}, {"last_funding_round_amount_raised": {"$gt": 0}},
              {"categories_and_keywords": {"$match": "technology"}}]},
    {"$search": {"query": "cloud security", "fields": ["description", "categories_and_keywords"]}},
    {"website_domain": "airwallex.com"},
    {"employees_count": {"$gte": 100, "$lte": 5000}, "$sort": {"employees_count": -1}},
    {"funding_rounds": {"$elemMatch": {"funding_rounds.name": "Series B"}}},
    {"$nor": [{"hq_country_iso2": {"$in": ["US", "CA"]}}], "description": {"$exists": True}},
]


@pytest.mark.parametrize("filters", DOCUMENTED_SIMPLE)
def test_documented_simple_filters_are_accepted(filters: dict[str, Any]) -> None:
    check_simple_filters(filters, CAPS)


@pytest.mark.parametrize(
    ("filters", "field", "problem"),
    [
        ({"hq_country": {"$eq": "US"}}, "simple_filters.hq_country", "unknown field 'hq_country'"),
        ({"employees_count": {"$between": [1, 2]}}, "simple_filters.employees_count.$between", "unknown operator"),
        ({"hq_country_iso2": {"$gte": "A"}}, "simple_filters.hq_country_iso2.$gte", "does not support ranges"),
        ({"$sort": [{"description": "asc"}]}, "simple_filters.$sort.description", "not sortable"),
        ({"$and": [{"$limit": 3}]}, "simple_filters.$and[0].$limit", "only at the top level"),
        ({"description": {"$elemMatch": {"description": "x"}}}, "simple_filters.description.$elemMatch",
         "not a nested path"),
        ({"hq_country_iso2": {"$in": ["US", "CA", "DE", "FR"]}}, "simple_filters.hq_country_iso2.$in",
         "more than 3 terms"),
        ({"description": {"$match": "x" * 51}}, "simple_filters.description.$match", "longer than 50"),
        ({"$sort": [{"employees_count": "desc"}, {"last_funding_round_amount_raised": "asc"},
                    {"employees_count": "asc"}]}, "simple_filters.$sort", "more than 2 sort clauses"),
        ({"$or": [{"$or": [{"$or": [{"$or": [{"website_domain": "a"}]}]}]}]}, "simple_filters",
         "deeper than 4"),
        ({"hq_country_iso2": {"$exists": "yes"}}, "simple_filters.hq_country_iso2.$exists", "true or false"),
        ({"$search": {"fields": ["description"]}}, "simple_filters.$search", '{"query"'),
        ({}, "simple_filters", "non-empty"),
    ],
)
def test_invalid_simple_filters_name_the_field_or_operator(filters: dict[str, Any], field: str,
                                                          problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_simple_filters(filters, CAPS)
    assert info.value.field.startswith(field) and problem in info.value.problem


def test_too_many_clauses_are_rejected() -> None:
    many = {"$and": [{"website_domain": f"d{i}.com"} for i in range(12)]}
    with pytest.raises(ConfigError, match="more than 10 clauses"):
        check_simple_filters(many, CAPS)


def test_documented_dsl_filters_are_accepted() -> None:
    check_dsl_filters({"query": {"term": {"website_domain": "stripe.com"}}}, CAPS)
    check_dsl_filters({
        "query": {"bool": {
            "must": [{"range": {"employees_count": {"gte": 100}}}],
            "filter": [{"terms": {"hq_country_iso2": ["US", "CA"]}}],
            "should": [{"match": {"description": "security"}}, {"match_phrase": {"description": "cloud"}}],
            "must_not": [{"exists": {"field": "website_domain"}}],
        }},
        "sort": [{"employees_count": {"order": "desc"}}], "size": 50,
    }, CAPS)
    check_dsl_filters({"query": {"nested": {"path": "funding_rounds",
                                            "query": {"term": {"funding_rounds.name.keyword": "Series A"}}}}}, CAPS)
    check_dsl_filters({"query": {"multi_match": {"query": "ai", "fields": ["description^2"]}}}, CAPS)
    check_dsl_filters({"query": {"match_all": {}}}, CAPS)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"sort": []}, "filters.query"),
        ({"query": {}}, "filters.query"),
        ({"query": {"wildcard": {"description": "a*"}}}, "filters.query.wildcard"),
        ({"query": {"range": {"hq_country_iso2": {"gte": "A"}}}}, "filters.query.range.hq_country_iso2"),
        ({"query": {"range": {"employees_count": {"from": 1}}}}, "filters.query.range.employees_count"),
        ({"query": {"nested": {"path": "jobs", "query": {"match_all": {}}}}}, "filters.query.nested.path"),
        ({"query": {"match_all": {}}, "size": 0}, "filters.size"),
        ({"query": {"match_all": {}}, "from": 10}, "filters"),
        ({"query": {"bool": {"must": [{"term": {"nope": 1}}]}}}, "filters.query.bool.must[0].term.nope"),
    ],
)
def test_invalid_dsl_filters_name_the_clause(filters: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_dsl_filters(filters, CAPS)
    assert info.value.field == field
