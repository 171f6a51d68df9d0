"""Value tests of the filter-search engines: equality, sets, ranges, text (contract §2.5).

Each test is a :data:`~.engine.ValuesPred` over the values found at a field's path
(:func:`~.engine.values_at`); a document matches when the values pass. Query values are
coerced to the field's type first (FilterError naming field and operator otherwise).

Semantics chosen where the docs are silent (INF, §2.5): ``$eq``/``term`` compare whole values
exactly (case-sensitive; numbers, booleans and ISO dates coerced like OpenSearch would);
``$match``/``match`` tokenize case-insensitively (``\\w+``) with OR semantics by default (the
``match_operator`` setting), ``*``/``?`` wildcards inside a query token; an array field is one
bag of tokens; phrases are contiguous token runs inside one value.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from providers.sixtyfour.emulator.engine import TEXT_TYPES, Budget, FieldSpec, FilterError, ValuesPred

__all__ = ["coerce", "eq", "exists", "match", "one_of", "phrase", "range_test", "tokens"]

_WORD = re.compile(r"\w+")
_QUERY_WORD = re.compile(r"[\w*?]+")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def coerce(spec: FieldSpec, value: Any, op: str) -> Any:
    """``value`` as the field's type, or FilterError naming field and operator."""
    kind = spec.field_type
    bad = FilterError(f"Invalid value {value!r} for '{op}' on field '{spec.field}' ({kind})")
    if kind == "nested" or isinstance(value, dict | list) or value is None:
        raise bad
    if kind in ("long", "double"):
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value)
        except ValueError:
            raise bad from None
        return int(number) if kind == "long" and number.is_integer() else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise bad
    if isinstance(value, bool):
        raise bad
    if kind == "date":
        text = str(value)
        if not _DATE.match(text):
            raise bad
        return text[:10]
    return str(value)


def eq(spec: FieldSpec, value: Any, op: str) -> ValuesPred:
    target = coerce(spec, value, op)
    return lambda values: target in values


def one_of(spec: FieldSpec, values: Any, op: str, budget: Budget) -> ValuesPred:
    if not isinstance(values, list):
        raise FilterError(f"'{op}' on field '{spec.field}' expects an array")
    budget.terms(len(values), f"{op} on {spec.field}")
    targets = {coerce(spec, v, op) for v in values}
    return lambda found: not targets.isdisjoint(found)


_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda v, b: v > b, "gte": lambda v, b: v >= b,
    "lt": lambda v, b: v < b, "lte": lambda v, b: v <= b,
}


def range_test(spec: FieldSpec, bounds: Mapping[str, Any], op: str) -> ValuesPred:
    """``bounds`` maps gt/gte/lt/lte to values; every bound must hold for one value."""
    if not spec.rangeable:
        raise FilterError(f"Field '{spec.field}' ({spec.field_type}) does not support range "
                          f"operator '{op}'")
    checks = [(_BOUNDS[name], coerce(spec, bound, op)) for name, bound in bounds.items()]

    def test(values: list[Any]) -> bool:
        return any(all(check(v, b) for check, b in checks) for v in values)

    return test


def exists(flag: bool) -> ValuesPred:
    return lambda values: bool(values) == flag


@functools.lru_cache(maxsize=262144)
def tokens(text: str) -> tuple[str, ...]:
    """Lower-case word tokens of a document string (cached: documents are immutable)."""
    return tuple(_WORD.findall(text.lower()))


def _value_tokens(values: list[Any]) -> set[str]:
    found: set[str] = set()
    for value in values:
        found.update(tokens(value if isinstance(value, str) else str(value)))
    return found


def _text_field(spec: FieldSpec, op: str) -> None:
    if spec.field_type not in TEXT_TYPES:
        raise FilterError(f"Operator '{op}' needs a text or keyword field; '{spec.field}' is "
                          f"{spec.field_type}")


def _query_tokens(text: Any, spec: FieldSpec, op: str) -> list[str]:
    if not isinstance(text, str):
        raise FilterError(f"'{op}' on field '{spec.field}' expects a string")
    return _QUERY_WORD.findall(text.lower())


def match(spec: FieldSpec, text: Any, operator: str, op: str) -> ValuesPred:
    """Token match: any (``or``) or every (``and``) query token occurs in the field."""
    _text_field(spec, op)
    if operator not in ("and", "or"):
        raise FilterError(f"Unsupported operator {operator!r} in '{op}' on '{spec.field}'")
    words = _query_tokens(text, spec, op)
    combine = all if operator == "and" else any

    def test(values: list[Any]) -> bool:
        found = _value_tokens(values)
        return bool(words) and combine(_hit(word, found) for word in words)

    return test


def _hit(word: str, found: set[str]) -> bool:
    if "*" in word or "?" in word:
        return bool(fnmatch.filter(found, word))
    return word in found


def phrase(spec: FieldSpec, text: Any, op: str) -> ValuesPred:
    """The query's tokens appear contiguously, in order, inside one value."""
    _text_field(spec, op)
    words = tuple(_query_tokens(text, spec, op))
    n = len(words)

    def test(values: list[Any]) -> bool:
        for value in values:
            seq = tokens(value if isinstance(value, str) else str(value))
            if n and any(seq[i:i + n] == words for i in range(len(seq) - n + 1)):
                return True
        return False

    return test
