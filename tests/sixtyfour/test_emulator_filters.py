"""The emulator's filter engines on hand-made documents (design §5 layer 1; contract §2.2, §2.5).

Expected id sets are computed by hand from the documents below.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.sandbox.world import build_world
from providers.sixtyfour.emulator.capabilities import SCHEMAS, top_values
from providers.sixtyfour.emulator.documents import DocumentCache
from providers.sixtyfour.emulator.dsl import compile_dsl
from providers.sixtyfour.emulator.engine import EngineConfig, FilterError, Limits, run, values_at
from providers.sixtyfour.emulator.filters import SIMPLE_OPERATORS, compile_simple


def _company(name: str, **fields: Any) -> dict[str, Any]:
    return {"company_name": name, **fields}


def _round(name: str, amount: int, day: str) -> dict[str, Any]:
    return {"name": name, "amount_raised": amount, "announced_date": day}


COMPANIES = [
    _company("Acme Cloud", hq_country_iso2="US", hq_city="San Francisco", employees_count=250,
             founded_year=2015, industry="Software", is_public=False, ownership_status="private",
             categories_and_keywords=["saas", "cloud security"], website_domain="acme.io",
             description="Acme Cloud builds cloud security software for banks.",
             funding_rounds=[_round("Seed", 2_000_000, "2016-01-10"),
                             _round("Series A", 10_000_000, "2018-03-01"),
                             _round("Series B", 40_000_000, "2020-05-01")],
             last_funding_round={"type": "Series B", "amount_raised": 40_000_000},
             last_funding_round_amount_raised=40_000_000, source_id=1001,
             company_updates=[{"description": "Acme Cloud is backed by Y Combinator (YC X25)!",
                               "date": "2025-05-01"}]),
    _company("Birch Labs", hq_country_iso2="CA", hq_city="Toronto", employees_count=12,
             founded_year=2023, industry="Biotech", is_public=False, ownership_status="private",
             categories_and_keywords=["biotech", "technology"], website_domain="birchlabs.ca",
             description="Birch Labs is a biotech company focused on protein design.",
             funding_rounds=[_round("Seed", 1_500_000, "2024-02-01")],
             last_funding_round={"type": "Seed", "amount_raised": 1_500_000},
             last_funding_round_amount_raised=1_500_000, source_id=1002,
             company_updates=[{"description": "We're hiring in Toronto!", "date": "2025-04-01"},
                              {"description": "X25 YC batch demo day", "date": "2025-03-01"}]),
    _company("Cedar Security", hq_country_iso2="US", hq_city="New York", employees_count=5000,
             founded_year=1999, industry="Computer & Network Security", is_public=True,
             ownership_status="public", categories_and_keywords=["security", "cloud"],
             website_domain="cedar.com", description="Cedar Security protects enterprise networks.",
             funding_rounds=[_round("Series A", 5_000_000, "2001-06-01"),
                             _round("IPO", 200_000_000, "2010-09-01")],
             last_funding_round={"type": "IPO", "amount_raised": 200_000_000},
             last_funding_round_amount_raised=200_000_000, source_id=1003, company_updates=[]),
    _company("Delta Freight", hq_country_iso2="DE", hq_city="Berlin", employees_count=80,
             founded_year=2010, industry="Logistics", is_public=False, ownership_status="private",
             categories_and_keywords=["freight forwarding"], website_domain="deltafreight.de",
             description="Delta Freight moves cargo across Europe.", funding_rounds=[],
             last_funding_round=None, last_funding_round_amount_raised=None, source_id=1004,
             company_updates=[{"description": "Delta Freight opens a hub in Hamburg",
                               "date": "2024-11-02"}]),
    _company("Echo Analytics", hq_country_iso2="US", hq_city="Austin", employees_count=3,
             founded_year=2024, is_public=False, ownership_status="private",
             categories_and_keywords=["saas", "analytics"], website_domain="echo.ai",
             description="Echo Analytics builds product analytics for cloud startups.",
             funding_rounds=[_round("Seed", 500_000, "2025-01-15")],
             last_funding_round={"type": "Seed", "amount_raised": 500_000},
             last_funding_round_amount_raised=500_000, source_id=1005,
             company_updates=[{"description": "Echo joins YC this summer (YC X25)",
                               "date": "2025-06-01"}]),  # no industry
]


def _person(pid: str, headline: str, seniority: str, function: str,
            jobs: list[tuple[int, str, str | None]]) -> dict[str, Any]:
    current = []
    for company_id, company, title in jobs:
        item: dict[str, Any] = {"company": {"companyId": company_id, "name": company}}
        if title is not None:
            item["positions"] = [{"title": title}]
        current.append(item)
    return {"publicId": pid, "fullName": pid.replace("-", " ").title(), "headline": headline,
            "seniority": seniority, "jobFunction": function, "currentCompanies": current}


PEOPLE = [
    _person("ann-lee", "VP of Engineering at Acme Cloud", "VP", "Engineering",
            [(1001, "Acme Cloud", "VP of Engineering")]),
    _person("bob-stone", "Senior Software Engineer @ Cedar Security | ex-Acme Cloud", "Senior",
            "Engineering", [(1003, "Cedar Security", "Senior Software Engineer")]),
    _person("cara-diaz", "Head of Sales at Birch Labs", "Head", "Sales",
            [(1002, "Birch Labs", None)]),
    _person("dan-wu", "CEO at Delta Freight", "CXO", "Leadership",
            [(1004, "Delta Freight", "CEO"), (1001, "Acme Cloud", "Advisor")]),
    _person("eve-park", "Engineering Manager at Acme Cloud", "Manager", "Engineering",
            [(1001, "Acme Cloud", "Engineering Manager")]),
]
CONFIG = EngineConfig()


def _names(mode: str, idx: list[int]) -> list[str]:
    docs = COMPANIES if mode == "company" else PEOPLE
    key = "company_name" if mode == "company" else "publicId"
    return [docs[i][key] for i in idx]


def simple(filters: Any, mode: str = "company", config: EngineConfig = CONFIG) -> list[str]:
    docs = COMPANIES if mode == "company" else PEOPLE
    return _names(mode, run(docs, compile_simple(filters, SCHEMAS[mode], config)))


def dsl(filters: Any, mode: str = "company") -> list[str]:
    docs = COMPANIES if mode == "company" else PEOPLE
    return _names(mode, run(docs, compile_dsl(filters, SCHEMAS[mode], CONFIG)))


def query(clause: dict[str, Any], mode: str = "company") -> set[str]:
    return set(dsl({"query": clause}, mode))


def sset(filters: Any, mode: str = "company") -> set[str]:
    return set(simple(filters, mode))


ACME, BIRCH, CEDAR, DELTA, ECHO = (c["company_name"] for c in COMPANIES)
ALL = {ACME, BIRCH, CEDAR, DELTA, ECHO}


# -- simple_filters: field operators -----------------------------------------------------------


def test_bare_value_and_eq_are_exact_case_sensitive_matches() -> None:
    assert sset({"hq_country_iso2": "US"}) == {ACME, CEDAR, ECHO}
    assert sset({"hq_country_iso2": {"$eq": "US"}}) == {ACME, CEDAR, ECHO}
    assert sset({"hq_country_iso2": "us"}) == set()
    assert sset({"source_id": "1004"}) == {DELTA}  # numbers are coerced like OpenSearch
    assert sset({"is_public": True}) == {CEDAR}
    assert sset({"categories_and_keywords": "saas"}) == {ACME, ECHO}  # any array element


def test_implicit_and_of_top_level_keys() -> None:
    assert sset({"hq_country_iso2": "US", "employees_count": {"$gte": 100, "$lte": 5000}}) == {
        ACME, CEDAR}


def test_ne_and_nin_exclude_and_keep_documents_without_the_field() -> None:
    assert sset({"industry": {"$ne": "Software"}}) == {BIRCH, CEDAR, DELTA, ECHO}
    assert sset({"industry": {"$nin": ["Software", "Logistics"]}}) == {BIRCH, CEDAR, ECHO}
    assert sset({"industry": {"$eq": None}}) == {ECHO}


def test_range_operators_on_numbers_and_dates() -> None:
    assert sset({"employees_count": {"$gt": 80}}) == {ACME, CEDAR}
    assert sset({"employees_count": {"$gte": 80}}) == {ACME, CEDAR, DELTA}
    assert sset({"employees_count": {"$lt": 12}}) == {ECHO}
    assert sset({"employees_count": {"$lte": 12}}) == {BIRCH, ECHO}
    assert sset({"last_funding_round_amount_raised": {"$gt": 0}}) == ALL - {DELTA}
    assert sset({"funding_rounds.announced_date": {"$gte": "2024-01-01"}}) == {BIRCH, ECHO}
    assert sset({"company_updates.date": {"$lt": "2025"}}) == {DELTA}


def test_in_matches_any_listed_value() -> None:
    assert sset({"hq_city": {"$in": ["Berlin", "Austin", "Paris"]}}) == {DELTA, ECHO}
    assert sset({"funding_rounds.name": {"$in": ["IPO", "Series B"]}}) == {ACME, CEDAR}
    assert sset({"hq_city": {"$in": []}}) == set()


def test_exists_true_and_false() -> None:
    assert sset({"industry": {"$exists": False}}) == {ECHO}
    assert sset({"last_funding_round.type": {"$exists": True}}) == ALL - {DELTA}
    assert sset({"company_updates": {"$exists": False}}) == {CEDAR}  # empty nested array


def test_match_is_case_insensitive_token_or_with_wildcards() -> None:
    assert sset({"description": {"$match": "CLOUD banks"}}) == {ACME, ECHO}
    assert sset({"company_updates.description": {"$match": "(YC X25)"}}) == {ACME, BIRCH, ECHO}
    assert sset({"description": {"$match": "*tech*"}}) == {BIRCH}
    assert sset({"headline": {"$match": "*engineer*"}}, "people") == {
        "ann-lee", "bob-stone", "eve-park"}
    strict = EngineConfig(match_operator="and")
    assert set(simple({"description": {"$match": "cloud banks"}}, config=strict)) == {ACME}


def test_phrase_needs_the_words_contiguous_and_in_order() -> None:
    assert sset({"company_updates.description": {"$phrase": "(YC X25)"}}) == {ACME, ECHO}
    assert sset({"description": {"$phrase": "cloud security"}}) == {ACME}
    assert sset({"description": {"$phrase": "security cloud"}}) == set()


def test_dotted_paths_reach_objects_and_any_array_element() -> None:
    assert sset({"last_funding_round.type": "Seed"}) == {BIRCH, ECHO}
    assert sset({"currentCompanies.company.companyId": 1001}, "people") == {
        "ann-lee", "dan-wu", "eve-park"}


def test_elem_match_needs_one_element_to_meet_every_inner_condition() -> None:
    both = {"currentCompanies.company.companyId": 1004,
            "currentCompanies.positions.title": {"$match": "advisor"}}
    assert sset(both, "people") == {"dan-wu"}  # dotted paths may match across elements
    assert sset({"currentCompanies": {"$elemMatch": both}}, "people") == set()
    same = {**both, "currentCompanies.company.companyId": 1001}
    assert sset({"currentCompanies": {"$elemMatch": same}}, "people") == {"dan-wu"}
    doc_example = {"currentCompanies": {"$elemMatch": {"currentCompanies.company.companyId": 1003}}}
    assert sset(doc_example, "people") == {"bob-stone"}
    relative = {"funding_rounds": {"$elemMatch": {"name": "Seed", "amount_raised": {"$gt": 1e6}}}}
    assert sset(relative) == {ACME, BIRCH}


def test_elem_match_on_a_scalar_array_applies_operators_per_element() -> None:
    assert sset({"categories_and_keywords": {"$elemMatch": {"$in": ["cloud", "biotech"]}}}) == {
        BIRCH, CEDAR}


# -- simple_filters: logic, search, sort, limit --------------------------------------------------


def test_and_or_nor_and_not_compose() -> None:
    us, big = {"hq_country_iso2": "US"}, {"employees_count": {"$gte": 100}}
    assert sset({"$and": [us, big]}) == {ACME, CEDAR}
    assert sset({"$or": [{"hq_country_iso2": "DE"}, {"employees_count": {"$lt": 10}}]}) == {
        DELTA, ECHO}
    assert sset({"$nor": [us, big]}) == {BIRCH, DELTA}
    assert sset({"$not": us}) == {BIRCH, DELTA}
    assert sset({"$or": [{"jobFunction": "Sales"}, {"headline": {"$match": "ceo"}}],
                 "seniority": {"$ne": "VP"}}, "people") == {"cara-diaz", "dan-wu"}


def test_field_level_not_negates_its_operators() -> None:
    assert sset({"employees_count": {"$not": {"$gte": 80}}}) == {BIRCH, ECHO}


def test_search_matches_any_listed_field_and_defaults_to_text_fields() -> None:
    listed = {"$search": {"query": "technology banks", "fields": ["description",
                                                                "categories_and_keywords"]}}
    assert sset(listed) == {ACME, BIRCH}
    assert sset({"$search": {"query": "hamburg"}}) == {DELTA}  # company_updates.description


def test_sort_accepts_array_and_object_forms_with_missing_values_last() -> None:
    assert simple({"$sort": [{"employees_count": "desc"}]}) == [CEDAR, ACME, DELTA, BIRCH, ECHO]
    assert simple({"$sort": {"employees_count": 1}}) == [ECHO, BIRCH, DELTA, ACME, CEDAR]
    assert simple({"$sort": {"last_funding_round_amount_raised": -1}})[-1] == DELTA
    assert simple({"$sort": [{"hq_country_iso2": "asc"}, {"founded_year": "desc"}]}) == [
        BIRCH, DELTA, ECHO, ACME, CEDAR]
    assert simple({"$sort": {"company_name.keyword": "desc"}})[0] == ECHO


def test_limit_is_the_query_level_cap() -> None:
    compiled = compile_simple({"hq_country_iso2": "US", "$limit": 2}, SCHEMAS["company"], CONFIG)
    assert compiled.limit == 2
    assert len(run(COMPANIES, compiled)) == 3  # the cap is applied by paging, not by the engine


def test_keyword_suffix_resolves_to_the_field() -> None:
    assert sset({"company_name.keyword": "Birch Labs"}) == {BIRCH}
    assert sset({"funding_rounds.name.keyword": "IPO"}) == {CEDAR}


def _nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"hq_city": "Berlin"}
    for _ in range(depth):
        doc = {"$and": [doc]}
    return doc


@pytest.mark.parametrize(("filters", "message"), [
    ({"headcount": 5}, "Unknown field 'headcount'"),
    ({"industry": {"$regex": "Soft"}}, "Unsupported operator '$regex' on field 'industry'"),
    ({"$where": "x"}, "Unsupported operator '$where'"),
    ({"industry": {"$and": []}}, "'$and' is not allowed inside field 'industry'"),
    ({"$and": [{"$sort": {"employees_count": 1}}]}, "'$sort' is only allowed at the top level"),
    ({"$sort": {"description": 1}}, "Field 'description' is not sortable"),
    ({"$sort": {"funding_rounds.name": 1}}, "Field 'funding_rounds.name' is not sortable"),
    ({"$sort": {"employees_count": "up"}}, "Invalid sort direction 'up'"),
    ({"industry": {"$gt": "A"}}, "Field 'industry' (keyword) does not support range operator '$gt'"),
    ({"employees_count": {"$gte": "many"}}, "'$gte' on field 'employees_count'"),
    ({"hq_city": {"$in": "Berlin"}}, "'$in' on field 'hq_city' expects an array"),
    ({"employees_count": {"$match": "5"}}, "'$match' needs a text or keyword field"),
    ({"funding_rounds": "Seed"}, "Operator '$eq' is not supported on nested path 'funding_rounds'"),
    ({"$limit": 0}, "$limit must be a positive integer"),
    (_nested(8), "exceeds max_query_depth (8)"),
    ({"$or": [{"hq_city": str(i)} for i in range(100)]}, "max_clause_count is 100"),
    ({"hq_city": {"$in": [str(i) for i in range(501)]}}, "max_terms_per_clause is 500"),
    ({"$sort": [{"employees_count": 1}, {"founded_year": 1}, {"source_id": 1},
                {"hq_city": 1}]}, "max_sort_clauses is 3"),
    ({"description": {"$match": "x" * 1001}}, "simple_filters.description.$match"),
])
def test_invalid_simple_filters_name_the_field_operator_or_limit(
    filters: dict[str, Any], message: str,
) -> None:
    with pytest.raises(FilterError) as err:
        compile_simple(filters, SCHEMAS["company"], CONFIG)
    assert message in str(err.value)


def test_field_values_scopes_reject_sort_and_limit() -> None:
    for key, value in (("$sort", {"employees_count": 1}), ("$limit", 5)):
        with pytest.raises(FilterError, match=rf"simple_filters.\{key} is not supported"):
            compile_simple({key: value}, SCHEMAS["company"], CONFIG, search_request=False)


def test_limits_are_configurable() -> None:
    tight = EngineConfig(Limits(max_query_depth=2))
    with pytest.raises(FilterError, match="max_query_depth"):
        compile_simple(_nested(2), SCHEMAS["company"], tight)
    assert simple(_nested(1), config=tight) == [DELTA]


def test_every_documented_operator_is_listed() -> None:
    assert len(SIMPLE_OPERATORS) == 19 and len(set(SIMPLE_OPERATORS)) == 19


# -- DSL filters ---------------------------------------------------------------------------------


def test_dsl_term_terms_range_exists_match_all() -> None:
    assert query({"term": {"website_domain": "acme.io"}}) == {ACME}
    assert query({"term": {"hq_city": {"value": "Berlin"}}}) == {DELTA}
    assert query({"terms": {"hq_country_iso2": ["CA", "DE"]}}) == {BIRCH, DELTA}
    assert query({"range": {"employees_count": {"gte": 12, "lt": 250}}}) == {BIRCH, DELTA}
    assert query({"range": {"founded_year": {"gt": 2015}}}) == {BIRCH, ECHO}
    assert query({"exists": {"field": "industry"}}) == ALL - {ECHO}
    assert query({"match_all": {}}) == ALL


def test_dsl_bool_must_filter_should_must_not() -> None:
    us = {"term": {"hq_country_iso2": "US"}}
    small = {"range": {"employees_count": {"lt": 100}}}
    assert query({"bool": {"must": [us], "must_not": [small]}}) == {ACME, CEDAR}
    assert query({"bool": {"filter": us, "should": [small]}}) == {ACME, CEDAR, ECHO}  # optional
    assert query({"bool": {"should": [us, small]}}) == ALL  # min 1 without must/filter
    assert query({"bool": {"should": [us, small], "minimum_should_match": 2}}) == {ECHO}
    assert query({"bool": {"filter": [us], "should": [small], "minimum_should_match": 1}}) == {ECHO}


def test_dsl_match_operator_and_phrase() -> None:
    assert query({"match": {"description": "cloud banks"}}) == {ACME, ECHO}
    assert query({"match": {"description": {"query": "cloud banks", "operator": "and"}}}) == {ACME}
    assert query({"match_phrase": {"description": "enterprise networks"}}) == {CEDAR}
    assert query({"match_phrase": {"description": {"query": "networks enterprise"}}}) == set()


def test_dsl_multi_match_types() -> None:
    fields = ["description", "categories_and_keywords^2"]
    best = {"query": "cloud security", "fields": fields, "type": "best_fields", "operator": "and"}
    assert query({"multi_match": best}) == {ACME, CEDAR}  # Cedar: both in its categories
    split = {**best, "query": "protein technology"}  # Birch: one word in each field
    assert query({"multi_match": split}) == set()
    assert query({"multi_match": {**split, "type": "cross_fields"}}) == {BIRCH}
    either = {"query": "cloud security", "fields": fields}
    assert query({"multi_match": either}) == {ACME, CEDAR, ECHO}
    assert query({"multi_match": {**either, "type": "phrase"}}) == {ACME}


def test_dsl_nested_evaluates_one_element_at_a_time() -> None:
    series_b = {"nested": {"path": "funding_rounds",
                           "query": {"match_phrase": {"funding_rounds.name": "Series B"}}}}
    assert query(series_b) == {ACME}
    both = {"bool": {"must": [{"term": {"currentCompanies.company.companyId": 1004}},
                              {"match": {"currentCompanies.positions.title": "advisor"}}]}}
    assert query({"nested": {"path": "currentCompanies", "query": both}}, "people") == set()
    assert query(both, "people") == {"dan-wu"}
    snippet = {"nested": {"path": "funding_rounds",
                          "query": {"term": {"funding_rounds.name.keyword": "Seed"}}}}
    assert query(snippet) == {ACME, BIRCH, ECHO}


def test_dsl_sort_forms_and_size() -> None:
    compiled = compile_dsl({"query": {"match_all": {}}, "sort": [{"employees_count": {"order": "desc"}}],
                            "size": 2}, SCHEMAS["company"], CONFIG)
    assert _names("company", run(COMPANIES, compiled)) == [CEDAR, ACME, DELTA, BIRCH, ECHO]
    assert compiled.limit == 2
    assert dsl({"query": {"match_all": {}}, "sort": [{"founded_year": "asc"}, "_score"]})[0] == CEDAR
    assert dsl({"query": {"match_all": {}}, "sort": ["company_name.keyword"]})[0] == ACME


def test_dsl_keyword_suffix_on_text_and_keyword_fields() -> None:
    assert query({"term": {"company_name.keyword": "Delta Freight"}}) == {DELTA}
    assert query({"term": {"hq_country_iso2.keyword": "CA"}}) == {BIRCH}


@pytest.mark.parametrize(("filters", "message"), [
    ({"query": {"wildcard": {"hq_city": "B*"}}}, "Unsupported query clause 'wildcard'"),
    ({"query": {"term": {"hq_town": "Berlin"}}}, "Unknown field 'hq_town'"),
    ({"query": {"nested": {"path": "hq_city", "query": {"match_all": {}}}}}, "Unknown nested path"),
    ({"query": {}}, "filters.query is required"),
    ({"sort": [{"employees_count": "asc"}]}, "filters.query is required"),
    ({"query": {"term": {"hq_city": "x"}, "match_all": {}}}, "exactly one key"),
    ({"query": {"range": {"hq_city": {"gte": "A"}}}}, "Field 'hq_city' (keyword) does not support"),
    ({"query": {"range": {"employees_count": {"above": 3}}}}, "Unsupported parameter 'above'"),
    ({"query": {"match_all": {}}, "aggs": {}}, "filters.aggs is not supported"),
    ({"query": {"match_all": {}}, "sort": [{"headline": "asc"}]}, "Unknown field 'headline'"),
    ({"query": {"match_all": {}}, "sort": [{"description": "asc"}]}, "'description' is not sortable"),
    ({"query": {"match_all": {}}, "size": 0}, "filters.size must be a positive integer"),
    ({"query": {"terms": {"hq_city": ["x"] * 501}}}, "max_terms_per_clause is 500"),
    ({"query": {"match": {"employees_count": "5"}}}, "'match' needs a text or keyword field"),
])
def test_invalid_dsl_filters_name_the_clause_field_or_parameter(
    filters: dict[str, Any], message: str,
) -> None:
    with pytest.raises(FilterError) as err:
        compile_dsl(filters, SCHEMAS["company"], CONFIG)
    assert message in str(err.value)


def test_dsl_field_values_scope_allows_only_query() -> None:
    for key, value in (("sort", [{"employees_count": "asc"}]), ("size", 3)):
        with pytest.raises(FilterError, match=f"filters.{key} is not supported"):
            compile_dsl({"query": {"match_all": {}}, key: value}, SCHEMAS["company"], CONFIG,
                        search_request=False)


# -- top values and the catalogue ----------------------------------------------------------------


def test_top_values_count_documents_order_by_count_then_value_and_add_a_null_bucket() -> None:
    values = top_values(COMPANIES, SCHEMAS["company"].fields["industry"], 10)
    assert [(v["value"], v["count"]) for v in values] == [
        ("Biotech", 1), ("Computer & Network Security", 1), ("Logistics", 1), ("Software", 1),
        (None, 1)]
    assert values[0]["percent_of_scope"] == 0.2
    assert values[0]["filter_snippet"] == {"term": {"industry": "Biotech"}}
    assert values[-1]["filter_snippet"] == {"bool": {"must_not": [{"exists": {"field": "industry"}}]}}
    countries = top_values(COMPANIES, SCHEMAS["company"].fields["hq_country_iso2"], 1)
    assert countries == [{"value": "US", "count": 3, "percent_of_scope": 0.6,
                          "filter_snippet": {"term": {"hq_country_iso2": "US"}}}]


def test_nested_top_values_are_document_counts_with_reusable_nested_snippets() -> None:
    values = top_values(COMPANIES, SCHEMAS["company"].fields["funding_rounds.name"], 3)
    assert [(v["value"], v["count"]) for v in values] == [("Seed", 3), ("Series A", 2),
                                                         ("IPO", 1)]
    for value in values:
        assert value["filter_snippet"]["nested"]["path"] == "funding_rounds"
        assert len(query(value["filter_snippet"])) == value["count"]
    titles = top_values(PEOPLE, SCHEMAS["people"].fields["currentCompanies.positions.title"], 10)
    assert titles[-1] == {"value": None, "count": 1, "percent_of_scope": 0.2, "filter_snippet": {
        "bool": {"must_not": [{"nested": {"path": "currentCompanies", "query": {
            "exists": {"field": "currentCompanies.positions.title"}}}}]}}}
    assert query(titles[-1]["filter_snippet"], "people") == {"cara-diaz"}
    counted = top_values(PEOPLE, SCHEMAS["people"].fields["currentCompanies.company.name"], 1)
    assert counted[0]["value"] == "Acme Cloud" and counted[0]["count"] == 3
    assert counted[0]["filter_snippet"]["nested"]["query"] == {
        "term": {"currentCompanies.company.name.keyword": "Acme Cloud"}}


@pytest.mark.parametrize("mode", ["company", "people"])
def test_every_catalogue_field_occurs_in_the_rendered_documents(mode: str) -> None:
    docs = DocumentCache(build_world(7, 400), positions_missing_rate=0.05).get(mode).docs
    for name, spec in SCHEMAS[mode].fields.items():
        assert any(values_at(doc, name) for doc in docs), name
        if spec.sortable or spec.rangeable:
            sample = next(v for doc in docs for v in values_at(doc, name))
            assert isinstance(sample, int | float | str | bool), name
