"""Client-side checks of Sixtyfour filter searches against ``filter-capabilities`` (contract §2).

Everything the API would reject with a 400 is rejected here first, before the paid
``/search/query`` call, as :class:`~aggregator.errors.ConfigError` naming the field or operator:

- ``simple_filters`` (§2.5): known operators only; ``$sort``/``$limit`` top-level only; fields must
  exist and be queryable; ranges only on rangeable fields; ``$sort`` only on sortable fields;
  ``$elemMatch`` on nested paths with full dotted inner keys; ``$search`` needs ``query`` and
  known ``fields``.
- DSL ``filters`` (§2.3): ``{query (required, non-empty), sort?, size?}`` with the clauses
  ``bool term terms range exists match match_phrase multi_match nested match_all``.
- both: the published limits (query depth, clause count, terms per clause, sort clauses, string
  length).

Without capabilities (``caps=None``) only the structure is checked — shapes, operators (the
documented set), clause kinds, ``$limit``/``size`` ranges — so a malformed filter is rejected before
even the ``filter-capabilities`` read; field names and nested paths are then left to the full check.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aggregator.errors import ConfigError
from aggregator.models import FilterCapabilities

__all__ = ["DOCUMENTED_OPERATORS", "check_dsl_filters", "check_simple_filters"]

RANGE_OPS = {"$gt", "$gte", "$lt", "$lte"}
VALUE_OPS = {"$eq", "$ne", "$in", "$nin", "$exists", "$match", "$phrase", *RANGE_OPS}
LOGICAL_OPS = {"$and", "$or", "$nor"}
TOP_ONLY = {"$sort", "$limit"}
DSL_CLAUSES = {"bool", "term", "terms", "range", "exists", "match", "match_phrase", "multi_match", "nested",
               "match_all"}
BOOL_KEYS = {"must", "filter", "should", "must_not", "minimum_should_match"}
DOCUMENTED_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$match",
                        "$phrase", "$and", "$or", "$not", "$nor", "$elemMatch", "$search", "$sort", "$limit")
DEFAULT_LIMITS = {"max_query_depth": 8, "max_clause_count": 100, "max_terms_per_clause": 500,
                  "max_sort_clauses": 3, "max_string_length": 1000}


@dataclass
class _Walk:
    caps: FilterCapabilities | None  # None: check the structure only (no field names, no nested paths)
    where: str
    clauses: int = 0
    limits: Mapping[str, int] = field(default_factory=dict)

    def limit(self, name: str) -> int:
        if self.caps is None:  # the provider's own limits are not known yet: only the full check applies them
            return sys.maxsize
        return int(self.limits.get(name, DEFAULT_LIMITS[name]))

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}{path}", problem)

    def unknown_operator(self, op: str) -> str:
        operators = self.caps.operators if self.caps is not None else DOCUMENTED_OPERATORS
        return f"unknown operator {op!r} (supported: {', '.join(operators)})"

    def nested(self, name: str) -> bool:
        """Whether ``name`` is a nested path (always, when only the structure is checked)."""
        if self.caps is None:
            return True
        spec = self.caps.field(name)
        return name in self.caps.nested_paths or (spec is not None and spec.field_type == "nested")

    def count(self, path: str, depth: int) -> None:
        self.clauses += 1
        if self.clauses > self.limit("max_clause_count"):
            raise self.fail(path, f"more than {self.limit('max_clause_count')} clauses")
        if depth > self.limit("max_query_depth"):
            raise self.fail(path, f"nested deeper than {self.limit('max_query_depth')} levels")

    def known(self, name: str, path: str, *, rangeable: bool = False, sortable: bool = False) -> None:
        if self.caps is None:
            return
        spec = self.caps.field(name)
        if spec is None:
            near = [f.field for f in self.caps.fields if name.split(".")[-1] in f.field][:3]
            hint = f"; did you mean {', '.join(near)}?" if near else "; see `deepsearch filter --fields`"
            raise self.fail(path, f"unknown field {name!r} for {self.caps.mode} mode{hint}")
        if not spec.queryable:
            raise self.fail(path, f"field {name!r} is not queryable")
        if rangeable and not spec.rangeable:
            raise self.fail(path, f"field {name!r} does not support ranges ($gt/$gte/$lt/$lte)")
        if sortable and not spec.sortable:
            raise self.fail(path, f"field {name!r} is not sortable")

    def value(self, value: Any, path: str) -> None:
        if isinstance(value, str) and len(value) > self.limit("max_string_length"):
            raise self.fail(path, f"string longer than {self.limit('max_string_length')} characters")
        if isinstance(value, list) and len(value) > self.limit("max_terms_per_clause"):
            raise self.fail(path, f"more than {self.limit('max_terms_per_clause')} terms")


# -- simple_filters ----------------------------------------------------------------------------
def check_simple_filters(filters: Any, caps: FilterCapabilities | None, where: str = "simple_filters") -> None:
    """Validate ``simple_filters`` against ``caps`` (None: structure only). Raises ConfigError naming the
    field/operator."""
    walk = _Walk(caps, where, limits=caps.limits if caps is not None else {})
    if not isinstance(filters, dict) or not filters:
        raise walk.fail("", "must be a non-empty object")
    for key, value in filters.items():
        if key == "$sort":
            _check_sort(walk, value)
        elif key == "$limit":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5000:
                raise walk.fail(".$limit", "must be an integer 1..5000")
        else:
            _check_condition(walk, key, value, f".{key}", 1)


def _check_sort(walk: _Walk, value: Any) -> None:
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
    if not items or not all(isinstance(i, dict) and i for i in items):
        raise walk.fail(".$sort", 'use [{"field": "asc"|"desc"}] or {"field": 1|-1}')
    pairs = [(k, v) for item in items for k, v in item.items()]
    if len(pairs) > walk.limit("max_sort_clauses"):
        raise walk.fail(".$sort", f"more than {walk.limit('max_sort_clauses')} sort clauses")
    for name, direction in pairs:
        if direction not in ("asc", "desc", 1, -1):
            raise walk.fail(f".$sort.{name}", 'direction must be "asc", "desc", 1 or -1')
        walk.known(name, f".$sort.{name}", sortable=True)


def _check_condition(walk: _Walk, key: str, value: Any, path: str, depth: int) -> None:
    walk.count(path, depth)
    if key in TOP_ONLY:
        raise walk.fail(path, f"{key} is allowed only at the top level")
    if key in LOGICAL_OPS:
        if not isinstance(value, list) or not value:
            raise walk.fail(path, f"{key} takes a non-empty list of conditions")
        for i, item in enumerate(value):
            _check_object(walk, item, f"{path}[{i}]", depth + 1)
    elif key == "$not":
        _check_object(walk, value, path, depth + 1)
    elif key == "$search":
        _check_search(walk, value, path)
    elif key.startswith("$"):
        raise walk.fail(path, walk.unknown_operator(key))
    else:
        _check_field(walk, key, value, path, depth)


def _check_object(walk: _Walk, item: Any, path: str, depth: int) -> None:
    if not isinstance(item, dict) or not item:
        raise walk.fail(path, "must be a non-empty object of conditions")
    for key, value in item.items():
        _check_condition(walk, key, value, f"{path}.{key}", depth)


def _check_search(walk: _Walk, value: Any, path: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("query"), str) or not value["query"].strip():
        raise walk.fail(path, '$search takes {"query": "...", "fields": [...]}')
    for name in value.get("fields") or []:
        walk.known(str(name), f"{path}.fields")
    walk.value(value["query"], path)


def _check_field(walk: _Walk, name: str, value: Any, path: str, depth: int) -> None:
    if not isinstance(value, dict):  # a bare value means $eq
        walk.known(name, path)
        walk.value(value, path)
        return
    for op, operand in value.items():
        if op == "$elemMatch":
            if not walk.nested(name):
                raise walk.fail(f"{path}.$elemMatch", f"{name!r} is not a nested path")
            _check_object(walk, operand, f"{path}.$elemMatch", depth + 1)
        elif op == "$not":
            _check_field(walk, name, operand, f"{path}.$not", depth + 1)
        elif op in VALUE_OPS:
            walk.known(name, f"{path}.{op}", rangeable=op in RANGE_OPS)
            if op in ("$in", "$nin") and not isinstance(operand, list):
                raise walk.fail(f"{path}.{op}", f"{op} takes a list of values")
            if op == "$exists" and not isinstance(operand, bool):
                raise walk.fail(f"{path}.{op}", "$exists takes true or false")
            walk.value(operand, f"{path}.{op}")
        else:
            raise walk.fail(f"{path}.{op}", walk.unknown_operator(op))


# -- DSL filters -------------------------------------------------------------------------------
def check_dsl_filters(filters: Any, caps: FilterCapabilities | None, where: str = "filters") -> None:
    """Validate DSL ``filters`` (``{query, sort?, size?}``) against ``caps`` (None: structure only).
    Raises ConfigError naming the clause."""
    walk = _Walk(caps, where, limits=caps.limits if caps is not None else {})
    if not isinstance(filters, dict) or set(filters) - {"query", "sort", "size"}:
        raise walk.fail("", "must be {query, sort?, size?}")
    if not isinstance(filters.get("query"), dict) or not filters["query"]:
        raise walk.fail(".query", "is required and must be a non-empty DSL query")
    _check_clause(walk, filters["query"], ".query", 1)
    sort = filters.get("sort")
    if sort is not None:
        if not isinstance(sort, list) or len(sort) > walk.limit("max_sort_clauses"):
            raise walk.fail(".sort", f"must be a list of at most {walk.limit('max_sort_clauses')} clauses")
        for i, item in enumerate(sort):
            if not (isinstance(item, str) and item) and not (isinstance(item, dict) and item):
                raise walk.fail(f".sort[{i}]", 'each sort clause is a field name or {"field": {"order": "asc"}}')
            for name in item if isinstance(item, dict) else [item]:
                walk.known(str(name), f".sort.{name}", sortable=True)
    size = filters.get("size")
    if size is not None and (not isinstance(size, int) or not 1 <= size <= 5000):
        raise walk.fail(".size", "must be an integer 1..5000")


def _check_clause(walk: _Walk, clause: Any, path: str, depth: int) -> None:
    walk.count(path, depth)
    if not isinstance(clause, dict) or len(clause) != 1:
        raise walk.fail(path, "each clause is an object with exactly one key")
    (kind, body), = clause.items()
    if kind not in DSL_CLAUSES:
        supported = ", ".join(sorted(DSL_CLAUSES))
        raise walk.fail(f"{path}.{kind}", f"unsupported clause {kind!r} (supported: {supported})")
    if kind == "bool":
        _check_bool(walk, body, f"{path}.bool", depth)
    elif kind == "nested":
        nested_path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(nested_path, str) or (walk.caps is not None and nested_path not in walk.caps.nested_paths):
            paths = ", ".join(walk.caps.nested_paths) if walk.caps is not None else "a nested path"
            raise walk.fail(f"{path}.nested.path", f"must be one of {paths}")
        _check_clause(walk, body.get("query"), f"{path}.nested.query", depth + 1)
    elif kind == "multi_match":
        if not isinstance(body, dict) or not body.get("query") or not isinstance(body.get("fields"), list):
            raise walk.fail(f"{path}.multi_match", "needs query and fields")
        for name in body["fields"]:
            walk.known(str(name).split("^")[0], f"{path}.multi_match.fields")
    elif kind != "match_all":
        _check_field_clause(walk, kind, body, f"{path}.{kind}")


def _check_bool(walk: _Walk, body: Any, path: str, depth: int) -> None:
    if not isinstance(body, dict) or not body or set(body) - BOOL_KEYS:
        raise walk.fail(path, f"bool takes {', '.join(sorted(BOOL_KEYS))}")
    for key, items in body.items():
        if key == "minimum_should_match":
            continue
        for i, item in enumerate(items if isinstance(items, list) else [items]):
            _check_clause(walk, item, f"{path}.{key}[{i}]", depth + 1)


def _check_field_clause(walk: _Walk, kind: str, body: Any, path: str) -> None:
    if kind == "exists":
        if not isinstance(body, dict) or not isinstance(body.get("field"), str):
            raise walk.fail(path, 'exists takes {"field": "..."}')
        walk.known(body["field"], path)
        return
    if not isinstance(body, dict) or len(body) != 1:
        raise walk.fail(path, f"{kind} takes exactly one field")
    (name, operand), = body.items()
    walk.known(name, f"{path}.{name}", rangeable=kind == "range")
    if kind == "terms" and not isinstance(operand, list):
        raise walk.fail(f"{path}.{name}", "terms takes a list of values")
    if kind == "range" and (not isinstance(operand, dict) or set(operand) - {"gt", "gte", "lt", "lte"}):
        raise walk.fail(f"{path}.{name}", "range takes gt, gte, lt, lte")
    walk.value(operand, f"{path}.{name}")
