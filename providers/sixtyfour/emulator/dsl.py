"""The DSL ``filters`` engine of the Sixtyfour emulator (contract §2.3, §2.5; docs D-filter).

``filters = {query (required, non-empty), sort?, size?}`` with the documented OpenSearch subset:
``bool`` (``must``/``filter``/``should``/``must_not``, ``minimum_should_match`` defaulting to 1
when there is no ``must``/``filter``, else 0), ``term``, ``terms``, ``range`` (gt/gte/lt/lte),
``exists``, ``match`` (``operator`` and/or), ``match_phrase``, ``multi_match`` (``query``,
``fields`` with optional ``^boost``, ``type`` best_fields/most_fields/cross_fields/phrase,
``operator``), ``nested`` (``path`` must be a nested path, inner clauses see one element at a
time), ``match_all``. ``.keyword`` suffixes resolve to their field. ``sort`` is OpenSearch-like:
``[{"employees_count": {"order": "desc"}}]``, ``[{"employees_count": "desc"}]`` or a field name
(ascending); ``_score``/``_doc`` keep index order. ``size`` is a query-level cap.

Scoring is not emulated (INF): results come in index order unless sorted, and ``term`` compares
whole values (see :mod:`.engine`). Clauses on nested fields outside ``nested`` match
any element (OpenSearch would find nothing; INF leniency). Unknown clauses, fields and
parameters raise :class:`~.engine.FilterError` naming them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from providers.sixtyfour.emulator.engine import (
    Budget,
    CompiledQuery,
    EngineConfig,
    FilterError,
    Pred,
    Schema,
    SortKey,
    all_of,
    any_element,
    any_of,
    check_strings,
    on_field,
    sort_key,
    values_at,
)
from providers.sixtyfour.emulator.values import eq, exists, match, one_of, phrase, range_test

__all__ = ["DSL_CLAUSES", "compile_dsl"]

DSL_CLAUSES = ("bool", "term", "terms", "range", "exists", "match", "match_phrase",
               "multi_match", "nested", "match_all")
_BOOL_KEYS = ("must", "filter", "should", "must_not")
_IGNORED = ("boost", "_name")  # accepted and ignored wherever OpenSearch allows them


def compile_dsl(
    filters: Any, schema: Schema, config: EngineConfig, *, search_request: bool = True
) -> CompiledQuery:
    """Compile ``filters``; ``search_request=False`` (field values) allows only ``query``."""
    if not isinstance(filters, dict):
        raise FilterError("filters must be an object")
    allowed = ("query", "sort", "size") if search_request else ("query",)
    for key in filters:
        if key not in allowed:
            raise FilterError(f"filters.{key} is not supported on this endpoint")
    query = filters.get("query")
    if not isinstance(query, dict) or not query:
        raise FilterError("filters.query is required and must be a non-empty object")
    check_strings(filters, config.limits, "filters")
    compiler = _Compiler(schema, config)
    predicate = compiler.clause(query, 1)
    sort = _sort(filters.get("sort"), schema, compiler.budget)
    size = filters.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise FilterError("filters.size must be a positive integer")
    return CompiledQuery(predicate, sort, size)


def _sort(raw: Any, schema: Schema, budget: Budget) -> tuple[SortKey, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    budget.sort_clauses(len(items))
    keys: list[SortKey] = []
    for item in items:
        if isinstance(item, str):
            name, order = item, "asc"
        elif isinstance(item, dict) and len(item) == 1:
            name, spec = next(iter(item.items()))
            order = spec.get("order", "asc") if isinstance(spec, dict) else spec
        else:
            raise FilterError(f"Invalid sort clause {item!r}")
        if name not in ("_score", "_doc"):
            keys.append(sort_key(schema, name, order))
    return tuple(keys)


def _single_field(clause: str, body: Any) -> tuple[str, Any]:
    """The ``{field: arg}`` of a field-level clause (``boost`` aside)."""
    if not isinstance(body, dict):
        raise FilterError(f"'{clause}' expects an object")
    items = [(k, v) for k, v in body.items() if k not in _IGNORED]
    if len(items) != 1:
        raise FilterError(f"'{clause}' expects exactly one field")
    return items[0]


def _options(clause: str, field: str, arg: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(arg, dict):
        return {allowed[0]: arg}
    unknown = [k for k in arg if k not in allowed and k not in _IGNORED]
    if unknown:
        raise FilterError(f"Unsupported parameter '{unknown[0]}' in '{clause}' on '{field}'")
    return arg


class _Compiler:
    def __init__(self, schema: Schema, config: EngineConfig) -> None:
        self.schema = schema
        self.config = config
        self.budget = Budget(config.limits)
        self.handlers: dict[str, Callable[[Any, int], Pred]] = {
            "bool": self.bool_, "term": self.term, "terms": self.terms, "range": self.range_,
            "exists": self.exists, "match": self.match, "match_phrase": self.match_phrase,
            "multi_match": self.multi_match, "nested": self.nested, "match_all": self.match_all,
        }

    def clause(self, query: Any, depth: int) -> Pred:
        if not isinstance(query, dict) or len(query) != 1:
            raise FilterError(f"A query clause must be an object with exactly one key: {query!r}")
        name, body = next(iter(query.items()))
        handler = self.handlers.get(name)
        if handler is None:
            raise FilterError(f"Unsupported query clause '{name}'")
        self.budget.enter(depth, name)
        return handler(body, depth)

    def bool_(self, body: Any, depth: int) -> Pred:
        if not isinstance(body, dict):
            raise FilterError("'bool' expects an object")
        for key in body:
            if key not in (*_BOOL_KEYS, "minimum_should_match", *_IGNORED):
                raise FilterError(f"Unsupported parameter '{key}' in 'bool'")
        lists = {key: self._list(body.get(key), key) for key in _BOOL_KEYS}
        compiled = {k: [self.clause(c, depth + 1) for c in v] for k, v in lists.items()}
        default = 0 if lists["must"] or lists["filter"] else 1
        minimum = _minimum(body.get("minimum_should_match", default))
        required = all_of([*compiled["must"], *compiled["filter"]])
        should = any_of(compiled["should"], minimum) if compiled["should"] and minimum else None
        excluded = any_of(compiled["must_not"]) if compiled["must_not"] else None
        return lambda doc: (required(doc) and (should is None or should(doc))
                            and (excluded is None or not excluded(doc)))

    def _list(self, value: Any, key: str) -> list[Any]:
        items = [] if value is None else value if isinstance(value, list) else [value]
        self.budget.terms(len(items), f"bool.{key}")
        return items

    def term(self, body: Any, depth: int) -> Pred:
        name, arg = _single_field("term", body)
        spec = self.schema.resolve(name)
        value = _options("term", name, arg, ("value", "case_insensitive")).get("value")
        return on_field(spec.field, eq(spec, value, "term"))

    def terms(self, body: Any, depth: int) -> Pred:
        name, arg = _single_field("terms", body)
        spec = self.schema.resolve(name)
        return on_field(spec.field, one_of(spec, arg, "terms", self.budget))

    def range_(self, body: Any, depth: int) -> Pred:
        name, arg = _single_field("range", body)
        spec = self.schema.resolve(name)
        if not isinstance(arg, dict):
            raise FilterError(f"'range' on '{name}' expects an object of gt/gte/lt/lte")
        bounds = _options("range", name, arg, ("gt", "gte", "lt", "lte", "format"))
        bounds = {k: v for k, v in bounds.items() if k not in ("format", *_IGNORED)}
        if not bounds:
            raise FilterError(f"'range' on '{name}' needs gt, gte, lt or lte")
        return on_field(spec.field, range_test(spec, bounds, "range"))

    def exists(self, body: Any, depth: int) -> Pred:
        if not isinstance(body, dict) or "field" not in body:
            raise FilterError("'exists' expects {\"field\": ...}")
        spec = self.schema.resolve(body["field"])
        return on_field(spec.field, exists(True))

    def match(self, body: Any, depth: int) -> Pred:
        name, arg = _single_field("match", body)
        spec = self.schema.resolve(name)
        opts = _options("match", name, arg, ("query", "operator", "fuzziness", "analyzer"))
        operator = str(opts.get("operator", self.config.match_operator)).lower()
        return on_field(spec.field, match(spec, opts.get("query"), operator, "match"))

    def match_phrase(self, body: Any, depth: int) -> Pred:
        name, arg = _single_field("match_phrase", body)
        spec = self.schema.resolve(name)
        opts = _options("match_phrase", name, arg, ("query", "slop", "analyzer"))
        return on_field(spec.field, phrase(spec, opts.get("query"), "match_phrase"))

    def multi_match(self, body: Any, depth: int) -> Pred:
        opts = _options("multi_match", "multi_match", body,
                        ("query", "fields", "type", "operator", "tie_breaker", "analyzer"))
        names = opts.get("fields") or list(self.schema.text_fields)
        if not isinstance(names, list) or not names:
            raise FilterError("'multi_match.fields' must be a non-empty array")
        self.budget.terms(len(names), "multi_match.fields")
        specs = [self.schema.resolve(str(n).split("^", 1)[0]) for n in names]
        kind = opts.get("type", "best_fields")
        operator = str(opts.get("operator", self.config.match_operator)).lower()
        query = opts.get("query")
        if kind == "phrase":
            return any_of([on_field(s.field, phrase(s, query, "multi_match")) for s in specs])
        tests = [match(s, query, operator, "multi_match") for s in specs]
        if kind == "cross_fields":
            paths = [s.field for s in specs]
            return lambda doc: tests[0]([v for p in paths for v in values_at(doc, p)])
        if kind not in ("best_fields", "most_fields"):
            raise FilterError(f"Unsupported multi_match type '{kind}'")
        return any_of([on_field(s.field, t) for s, t in zip(specs, tests, strict=True)])

    def nested(self, body: Any, depth: int) -> Pred:
        opts = _options("nested", "nested", body,
                        ("path", "query", "score_mode", "ignore_unmapped"))
        path = opts.get("path")
        if path not in self.schema.nested_paths:
            raise FilterError(f"Unknown nested path {path!r}; nested paths are "
                              f"{list(self.schema.nested_paths)}")
        inner = self.clause(opts.get("query"), depth + 1)
        return any_element(str(path), inner)

    def match_all(self, body: Any, depth: int) -> Pred:
        return lambda _doc: True


def _minimum(raw: Any) -> int:
    """``minimum_should_match`` as a count (integers or integer strings; INF: no percentages)."""
    if isinstance(raw, bool):
        raise FilterError(f"Unsupported minimum_should_match {raw!r}")
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        raise FilterError(f"Unsupported minimum_should_match {raw!r}") from None
