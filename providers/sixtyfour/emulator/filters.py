"""The ``simple_filters`` engine of the Sixtyfour emulator (contract §2.5; docs D-filter, NB-fast).

Mongo-style: top-level keys combine as an implicit AND; a bare value means ``$eq``; field
operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $match $phrase $not $elemMatch``;
logical ``$and $or $nor`` (arrays of filter objects) and ``$not`` (a filter object at document
level, or an operator object at field level); ``$search {query, fields}`` matches text across
fields; ``$sort`` (``[{"employees_count": "desc"}]`` or ``{"employees_count": -1}``) and
``$limit`` only at the top level and only in search requests (DOC).

Dotted paths reach into objects and arrays (any element may match, e.g.
``company_updates.description``). ``$elemMatch`` on a nested path evaluates its inner filter
against ONE element at a time, inner keys using the full dotted path (DOC NB-fast:
``{"currentCompanies": {"$elemMatch": {"currentCompanies.company.companyId": 7572649}}}``; a key
relative to the path is accepted too, INF). On a scalar array it applies operators per element.
``$ne``/``$nin`` match documents without the field (Mongo semantics, INF).
Every violation raises :class:`~.engine.FilterError` naming the field or operator.
"""

from __future__ import annotations

from typing import Any

from providers.sixtyfour.emulator.engine import (
    Budget,
    CompiledQuery,
    EngineConfig,
    FieldSpec,
    FilterError,
    Pred,
    Schema,
    SortKey,
    ValuesPred,
    all_of,
    any_element,
    any_of,
    check_strings,
    on_field,
    sort_key,
    values_at,
)
from providers.sixtyfour.emulator.values import eq, exists, match, one_of, phrase, range_test

__all__ = ["SIMPLE_OPERATORS", "compile_simple"]

SIMPLE_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
                    "$match", "$phrase", "$and", "$or", "$not", "$nor", "$elemMatch", "$search",
                    "$sort", "$limit")
"""The documented operators, in the docs' order (capabilities ``simple_query_operators``)."""

_RANGE_OPS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_TOP_ONLY = ("$sort", "$limit")


def compile_simple(
    filters: Any, schema: Schema, config: EngineConfig, *, search_request: bool = True
) -> CompiledQuery:
    """Compile ``simple_filters``; ``search_request=False`` (field values) rejects $sort/$limit."""
    if not isinstance(filters, dict):
        raise FilterError("simple_filters must be an object")
    check_strings(filters, config.limits, "simple_filters")
    body = {k: v for k, v in filters.items() if k not in _TOP_ONLY}
    for key in _TOP_ONLY:
        if key in filters and not search_request:
            raise FilterError(f"simple_filters.{key} is not supported on this endpoint")
    compiler = _Compiler(schema, config)
    predicate = compiler.document(body, 1)
    sort = _sort(filters["$sort"], schema, compiler.budget) if "$sort" in filters else ()
    limit = _limit(filters["$limit"]) if "$limit" in filters else None
    return CompiledQuery(predicate, sort, limit)


def _sort(raw: Any, schema: Schema, budget: Budget) -> tuple[SortKey, ...]:
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(i, dict) and len(i) == 1 for i in raw):
        items = [next(iter(i.items())) for i in raw]
    else:
        raise FilterError("$sort must be an object or an array of single-key objects")
    budget.sort_clauses(len(items))
    return tuple(sort_key(schema, name, direction) for name, direction in items)


def _limit(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise FilterError("$limit must be a positive integer")
    return raw


class _Compiler:
    def __init__(self, schema: Schema, config: EngineConfig) -> None:
        self.schema = schema
        self.config = config
        self.budget = Budget(config.limits)

    def document(self, doc: Any, depth: int) -> Pred:
        """A filter object: every key must hold (an empty object matches everything)."""
        if not isinstance(doc, dict):
            raise FilterError(f"Expected a filter object, got {doc!r}")
        preds = [self.logical(k, v, depth) if k.startswith("$") else self.field(k, v, depth)
                 for k, v in doc.items()]
        return all_of(preds) if preds else (lambda _doc: True)

    def logical(self, op: str, arg: Any, depth: int) -> Pred:
        self.budget.enter(depth, op)
        if op in ("$and", "$or", "$nor"):
            if not isinstance(arg, list) or not arg:
                raise FilterError(f"'{op}' expects a non-empty array of filter objects")
            self.budget.terms(len(arg), op)
            children = [self.document(child, depth + 1) for child in arg]
            if op == "$and":
                return all_of(children)
            either = any_of(children)
            return either if op == "$or" else (lambda doc: not either(doc))
        if op == "$not":
            inner = self.document(arg, depth + 1)
            return lambda doc: not inner(doc)
        if op == "$search":
            return self.search(arg)
        if op in _TOP_ONLY:
            raise FilterError(f"'{op}' is only allowed at the top level of simple_filters")
        if op in SIMPLE_OPERATORS:
            raise FilterError(f"Operator '{op}' must be applied to a field")
        raise FilterError(f"Unsupported operator '{op}'")

    def search(self, arg: Any) -> Pred:
        """``$search``: text match over the union of ``fields`` (default: every text field)."""
        spec = {"query": arg} if isinstance(arg, str) else arg
        if not isinstance(spec, dict) or "query" not in spec:
            raise FilterError("'$search' expects {\"query\": ..., \"fields\": [...]}")
        names = spec.get("fields") or list(self.schema.text_fields)
        if not isinstance(names, list):
            raise FilterError("'$search.fields' must be an array of field names")
        self.budget.terms(len(names), "$search.fields")
        fields = [self.schema.resolve(name) for name in names]
        if not fields:
            raise FilterError("'$search' needs at least one field")
        operator = spec.get("operator", self.config.match_operator)
        tests = [match(f, spec["query"], operator, "$search") for f in fields]  # validates all
        test = tests[0]  # the token test itself does not depend on the field
        paths = [f.field for f in fields]
        return lambda doc: test([v for p in paths for v in values_at(doc, p)])

    def field(self, name: str, cond: Any, depth: int) -> Pred:
        spec = self.schema.resolve(name)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            return all_of([self.operator(spec, op, arg, depth) for op, arg in cond.items()])
        if isinstance(cond, dict | list):
            raise FilterError(f"Field '{name}' needs a scalar value or an operator object")
        self.budget.enter(depth, name)
        return self._values_pred(spec, "$eq", cond)

    def operator(self, spec: FieldSpec, op: str, arg: Any, depth: int) -> Pred:
        self.budget.enter(depth, f"{spec.field}.{op}")
        if op == "$elemMatch":
            return self.elem_match(spec, arg, depth)
        if op == "$not":
            if not isinstance(arg, dict) or not arg:
                raise FilterError(f"'$not' on field '{spec.field}' expects an operator object")
            inner = all_of([self.operator(spec, o, a, depth + 1) for o, a in arg.items()])
            return lambda doc: not inner(doc)
        return self._values_pred(spec, op, arg)

    def _values_pred(self, spec: FieldSpec, op: str, arg: Any) -> Pred:
        if spec.field_type == "nested" and op != "$exists":
            raise FilterError(f"Operator '{op}' is not supported on nested path '{spec.field}'; "
                              "use $elemMatch or a dotted field")
        return on_field(spec.field, self.values_test(spec, op, arg))

    def values_test(self, spec: FieldSpec, op: str, arg: Any) -> ValuesPred:
        """A field operator as a test over the values found at the field's path."""
        if op in ("$eq", "$ne"):
            test = exists(False) if arg is None else eq(spec, arg, op)
            return test if op == "$eq" else (lambda values: not test(values))
        if op in _RANGE_OPS:
            return range_test(spec, {_RANGE_OPS[op]: arg}, op)
        if op in ("$in", "$nin"):
            inside = one_of(spec, arg, op, self.budget)
            return inside if op == "$in" else (lambda values: not inside(values))
        if op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"'$exists' on field '{spec.field}' expects true or false")
            return exists(arg)
        if op == "$match":
            return match(spec, arg, self.config.match_operator, op)
        if op == "$phrase":
            return phrase(spec, arg, op)
        if op in SIMPLE_OPERATORS:
            raise FilterError(f"Operator '{op}' is not allowed inside field '{spec.field}'")
        raise FilterError(f"Unsupported operator '{op}' on field '{spec.field}'")

    def elem_match(self, spec: FieldSpec, arg: Any, depth: int) -> Pred:
        if not isinstance(arg, dict) or not arg:
            raise FilterError(f"'$elemMatch' on field '{spec.field}' expects a filter object")
        if spec.field_type == "nested":
            inner = self.document(self._full_paths(spec.field, arg), depth + 1)
            return any_element(spec.field, inner)
        if not all(k.startswith("$") for k in arg):
            raise FilterError(f"'$elemMatch' on non-nested field '{spec.field}' expects operators")
        tests = [self.values_test(spec, op, a) for op, a in arg.items()]
        return lambda doc: any(all(t([v]) for t in tests) for v in values_at(doc, spec.field))

    def _full_paths(self, path: str, inner: dict[str, Any]) -> dict[str, Any]:
        """Inner keys relative to ``path`` (``company.companyId``) become full dotted paths."""
        out: dict[str, Any] = {}
        for key, value in inner.items():
            full = f"{path}.{key}"
            relative = not key.startswith(("$", f"{path}.")) and full in self.schema.fields
            out[full if relative else key] = value
        return out
