"""Shared core of the filter-search engines: fields, limits, paths, sorting (contract §2).

Both query languages of ``/search/query`` and ``/search/filter-field-values`` compile to plain
predicates over documents (the ``raw_source`` dicts): ``simple_filters`` in
:mod:`.filters`, the DSL ``filters`` in :mod:`.dsl`. This module holds what
they share:

- :class:`FieldSpec` / :class:`Schema`: the mode's field catalogue (§2.1; the catalogue itself
  lives in :mod:`.capabilities`). ``.keyword`` suffixes resolve to their field.
- :class:`Limits` (§2.1, INF values) and :class:`Budget`, which enforces them while compiling.
- :func:`values_at`: the values at a dotted path (objects and arrays are walked, any element
  may match, ``None`` counts as missing) and the predicate combinators over them; the value
  tests themselves (equality, ranges, text) live in :mod:`.values`.
- :func:`run`: filter then sort (missing values last, ties keep index order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TEXT_TYPES", "Budget", "CompiledQuery", "Doc", "EngineConfig", "FieldSpec", "FilterError",
    "Limits", "Pred", "Schema", "SortKey", "ValuesPred", "all_of", "any_element", "any_of",
    "check_strings", "nested_view", "on_field", "run", "sort_key", "values_at",
]

Doc = Mapping[str, Any]
Pred = Callable[[Doc], bool]
ValuesPred = Callable[[list[Any]], bool]

TEXT_TYPES = ("text", "keyword")


class FilterError(ValueError):
    """A query the API rejects (400); the message names the field, operator or limit."""


@dataclass(frozen=True)
class FieldSpec:
    """One entry of the capabilities ``fields`` list (``FilterFieldCapability``, §2.1)."""

    field: str
    field_type: str  # text | keyword | long | double | boolean | date | nested
    nested_path: str | None = None
    sortable: bool = False
    rangeable: bool = False
    supports_top_values: bool = False
    sort_field: str | None = None
    aggregation_field: str | None = None
    related_fields: tuple[str, ...] = ()
    preferred_for_exact_match: bool = False

    @property
    def value_type(self) -> str:
        """The type of the values (a text field aggregated through ``.keyword`` -> keyword)."""
        if self.field_type == "text" and self.aggregation_field:
            return "keyword"
        return self.field_type

    def to_doc(self) -> dict[str, Any]:
        return {
            "field": self.field, "field_type": self.field_type, "nested_path": self.nested_path,
            "queryable": True, "sortable": self.sortable, "rangeable": self.rangeable,
            "sort_field": self.sort_field, "aggregation_field": self.aggregation_field,
            "value_type": self.value_type, "supports_top_values": self.supports_top_values,
            "supports_exact_filter_snippet": self.supports_top_values,
            "related_fields": list(self.related_fields),
            "preferred_for_exact_match": self.preferred_for_exact_match,
        }


class Schema:
    """The queryable fields of one mode, by canonical name."""

    def __init__(self, mode: str, index_name: str, fields: Iterable[FieldSpec]) -> None:
        self.mode = mode
        self.index_name = index_name
        self.fields = {spec.field: spec for spec in sorted(fields, key=lambda f: f.field)}
        self.nested_paths = tuple(f.field for f in self.fields.values() if f.field_type == "nested")
        self.text_fields = tuple(f.field for f in self.fields.values() if f.field_type == "text")

    def resolve(self, name: Any) -> FieldSpec:
        """The field ``name`` (a ``.keyword`` suffix is accepted on string fields)."""
        if not isinstance(name, str):
            raise FilterError(f"Field names must be strings, got {name!r}")
        spec = self.fields.get(name)
        if spec is None and name.endswith(".keyword"):
            base = self.fields.get(name.removesuffix(".keyword"))
            spec = base if base is not None and base.field_type in TEXT_TYPES else None
        if spec is None:
            raise FilterError(f"Unknown field '{name}' for mode '{self.mode}'")
        return spec


@dataclass(frozen=True)
class Limits:
    """``FilterSearchLimits`` (§2.1). No numbers are published: these defaults are INF."""

    max_query_depth: int = 8
    max_clause_count: int = 100
    max_terms_per_clause: int = 500
    max_sort_clauses: int = 3
    max_string_length: int = 1000

    def to_doc(self) -> dict[str, int]:
        return {"max_query_depth": self.max_query_depth, "max_clause_count": self.max_clause_count,
                "max_terms_per_clause": self.max_terms_per_clause,
                "max_sort_clauses": self.max_sort_clauses,
                "max_string_length": self.max_string_length}


@dataclass(frozen=True)
class EngineConfig:
    """Limits plus the text-match operator (INF, §2.5: OpenSearch ``match`` defaults to or)."""

    limits: Limits = Limits()
    match_operator: str = "or"


@dataclass(frozen=True)
class SortKey:
    path: str
    descending: bool


@dataclass(frozen=True)
class CompiledQuery:
    """A compiled query: the filter, sort keys and query-level cap (``$limit``/``size``)."""

    predicate: Pred
    sort: tuple[SortKey, ...] = ()
    limit: int | None = None


class Budget:
    """Counts clauses and checks depth / list sizes against :class:`Limits` while compiling."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.clauses = 0

    def enter(self, depth: int, what: str) -> None:
        self.clauses += 1
        if depth > self.limits.max_query_depth:
            raise FilterError(f"Query depth {depth} at '{what}' exceeds max_query_depth "
                              f"({self.limits.max_query_depth})")
        if self.clauses > self.limits.max_clause_count:
            raise FilterError(f"Too many clauses at '{what}': max_clause_count is "
                              f"{self.limits.max_clause_count}")

    def terms(self, n: int, what: str) -> None:
        if n > self.limits.max_terms_per_clause:
            raise FilterError(f"'{what}' has {n} values; max_terms_per_clause is "
                              f"{self.limits.max_terms_per_clause}")

    def sort_clauses(self, n: int) -> None:
        if n > self.limits.max_sort_clauses:
            raise FilterError(f"{n} sort clauses; max_sort_clauses is {self.limits.max_sort_clauses}")


def check_strings(value: Any, limits: Limits, where: str) -> None:
    """Reject any string longer than ``max_string_length`` anywhere in ``value``."""
    if isinstance(value, str):
        if len(value) > limits.max_string_length:
            raise FilterError(f"String at '{where}' is {len(value)} characters; "
                              f"max_string_length is {limits.max_string_length}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_strings(item, limits, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, limits, f"{where}[{i}]")


# -- documents ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def values_at(doc: Doc, path: str) -> list[Any]:
    """Every non-null value at dotted ``path``; arrays on the way are flattened."""
    current: list[Any] = [doc]
    for part in _parts(path):
        found: list[Any] = []
        for item in current:
            if isinstance(item, Mapping):
                value = item.get(part)
                if isinstance(value, list):
                    found.extend(v for v in value if v is not None)
                elif value is not None:
                    found.append(value)
        if not found:
            return found
        current = found
    return current


def nested_view(path: str, element: Any) -> dict[str, Any]:
    """A one-element document ``{path: element}`` so inner full-path clauses see one element."""
    view: Any = element
    for part in reversed(_parts(path)):
        view = {part: view}
    result: dict[str, Any] = view
    return result


def on_field(path: str, test: ValuesPred) -> Pred:
    return lambda doc: test(values_at(doc, path))


def any_element(path: str, inner: Pred) -> Pred:
    """True when one element of the nested array at ``path`` satisfies ``inner`` by itself."""
    return lambda doc: any(inner(nested_view(path, e)) for e in values_at(doc, path))


def all_of(preds: Sequence[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    return lambda doc: all(p(doc) for p in preds)


def any_of(preds: Sequence[Pred], minimum: int = 1) -> Pred:
    if minimum <= 1:
        return lambda doc: any(p(doc) for p in preds)
    return lambda doc: sum(1 for p in preds if p(doc)) >= minimum


# -- sorting and running -----------------------------------------------------------------------


def sort_key(schema: Schema, name: Any, direction: Any) -> SortKey:
    """A validated sort key; ``direction`` is asc/desc or 1/-1."""
    spec = schema.resolve(name)
    if not spec.sortable:
        raise FilterError(f"Field '{spec.field}' is not sortable")
    if direction in ("asc", 1):
        return SortKey(spec.field, False)
    if direction in ("desc", -1):
        return SortKey(spec.field, True)
    raise FilterError(f"Invalid sort direction {direction!r} for field '{spec.field}'")


def run(docs: Sequence[Doc], query: CompiledQuery) -> list[int]:
    """Indexes of the matching documents, sorted by ``query.sort`` (stable: index order)."""
    hits = [i for i, doc in enumerate(docs) if query.predicate(doc)]
    for key in reversed(query.sort):
        present, missing = [], []
        for i in hits:
            values = values_at(docs[i], key.path)
            if values:
                present.append((max(values) if key.descending else min(values), i))
            else:
                missing.append(i)
        present.sort(key=lambda item: item[0], reverse=key.descending)
        hits = [i for _, i in present] + missing
    return hits
