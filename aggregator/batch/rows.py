"""Batch rows: one search (or one lookup) per row of a CSV or JSONL file, all checked before any is run.

A row holds a :class:`~aggregator.models.SearchRequest`'s fields (``query``, ``mode``, ``max_results``,
``providers``, ``strategy``, ``min_results``, ``hedge_delay_s``, ``deadline_s``, ``budget``, ``exclude``,
``titles``, ``companies``, ``locations``, ``schools``, ``simple_filters``, ``filters``, ``options``) or a
lookup's identity fields (``linkedin_url``, ``email``, ``phone_number``, ``profile_id``, ``urls``,
``usernames``: a row with any of them is a lookup, as ``deepsearch lookup``). A field left out (an empty
CSV cell, a JSON ``null``) takes the settings' default, as on the command line.

- CSV: a header row names the columns; list fields (``providers``, ``exclude``, ``titles``...) are
  comma-separated, or a JSON array (``["Acme, Inc.", "Beta"]``) when a value holds a comma; object fields
  (``simple_filters``, ``filters``, ``options``) are JSON objects.
- JSONL: one JSON object per line; lists as arrays (a string is split on commas, as in CSV).
- Column names are matched without case, with ``-`` or a space for ``_``; the command line's singular
  flag names are accepted too (``title``, ``company``, ``location``, ``school``, ``provider``, ``deadline``,
  ``hedge_delay``, ``phone``, ``url``, ``username``). An unknown column is refused with a did-you-mean.
- A search row without a ``query`` is allowed when it gives structured fields (the query is then the
  placeholder ``*``, which is not sent) or filters (``filter search``); a lookup's query is
  ``lookup <identity>``, and its ``max_results`` defaults to :data:`LOOKUP_MAX_RESULTS`.

:func:`validate_file` reads and checks a whole file and raises one :class:`BatchValidationError` that
lists every bad line and field (the first :data:`MAX_LISTED_PROBLEMS`, then "and N more").
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.errors import ConfigError, did_you_mean
from aggregator.models import PersonIdentity, SearchRequest

__all__ = [
    "BATCH_SUFFIXES",
    "LOOKUP_MAX_RESULTS",
    "MAX_LISTED_PROBLEMS",
    "BatchProblem",
    "BatchRow",
    "BatchValidationError",
    "RowKind",
    "batch_id_of",
    "parse_row",
    "rows_from",
    "validate_file",
]

RowKind = Literal["search", "lookup"]
BATCH_SUFFIXES = (".csv", ".jsonl", ".ndjson")
LOOKUP_MAX_RESULTS = 10  # as `deepsearch lookup`: a partial and a full profile of one person
MAX_LISTED_PROBLEMS = 20
PLACEHOLDER_QUERY = "*"  # a query of one character is a placeholder: with structured fields it is not sent
FILTER_QUERY = "filter search"  # as `deepsearch filter`

IDENTITY_FIELDS: tuple[str, ...] = tuple(PersonIdentity.model_fields)
SEARCH_FIELDS: tuple[str, ...] = tuple(name for name in SearchRequest.model_fields if name != "identity")
COLUMNS: tuple[str, ...] = SEARCH_FIELDS + IDENTITY_FIELDS
ALIASES = {"provider": "providers", "title": "titles", "company": "companies", "location": "locations",
           "school": "schools", "deadline": "deadline_s", "hedge_delay": "hedge_delay_s", "phone": "phone_number",
           "url": "urls", "username": "usernames"}
"""The command line's flag names, accepted as column names."""
LIST_FIELDS = frozenset({"providers", "exclude", "titles", "companies", "locations", "schools", "urls", "usernames"})
OBJECT_FIELDS = frozenset({"simple_filters", "filters", "options"})
STRUCTURED_FIELDS = ("titles", "companies", "locations", "schools")


class BatchRow(BaseModel):
    """One row of a batch: the fields of one search or one lookup, validated.

    ``fields`` are :class:`~aggregator.models.SearchRequest` fields under their own names, as JSON values
    (a lookup's identity under ``identity``); what a row leaves out is filled by the settings when it runs
    (:meth:`aggregator.Aggregator.build_request`). Build rows with :func:`validate_file` or :func:`rows_from`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int = Field(ge=1, description="1-based position among the batch's rows (a header or blank line is none).")
    line: int = Field(0, ge=0, description="The file line the row starts on; 0 when it is not from a file.")
    kind: RowKind = Field(description="'search', or 'lookup' for a row of identity fields.")
    fields: dict[str, Any] = Field(description="The request's fields the row gives (JSON values).")

    def where(self) -> str:
        """``line N`` for a row from a file, else ``row N`` (for messages)."""
        return f"line {self.line}" if self.line else f"row {self.row}"

    def normalized(self) -> dict[str, Any]:
        """What identifies the row in a batch id: its kind and fields (not its line)."""
        return {"kind": self.kind, "fields": self.fields}


@dataclass(frozen=True)
class BatchProblem:
    """One invalid field of one row: ``where`` is ``line N`` (or ``row N``), ``field`` the column."""

    where: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.problem}"


class BatchValidationError(ConfigError):
    """Rows of a batch are invalid; nothing was run. ``problems`` lists every one, by line (the message the
    first :data:`MAX_LISTED_PROBLEMS`, then how many more). ``field`` is the file (or ``rows``); ``rows``
    holds the rows that were valid (:func:`validate_file`: so that they can be planned too)."""

    def __init__(self, source: str, problems: Sequence[BatchProblem], rows: Sequence[BatchRow] = ()) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: int(p.where.rpartition(" ")[2] or 0)))
        self.rows = tuple(rows)
        lines = {p.where for p in self.problems}
        shown = [f"  {p}" for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            shown.append(f"  ... and {len(self.problems) - MAX_LISTED_PROBLEMS} more")
        noun = "problem" if len(self.problems) == 1 else "problems"
        where = "line" if len(lines) == 1 else "lines"
        super().__init__(source, f"{len(self.problems)} {noun} on {len(lines)} {where}; nothing was run:\n"
                                 + "\n".join(shown))


class _Invalid(Exception):
    """The problems of one row (internal: collected into one BatchValidationError)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(problems)


# -- columns -----------------------------------------------------------------------------------------
def canonical_column(name: str) -> str | None:
    """The field a column ``name`` gives (``Max-Results`` -> ``max_results``), or None when unknown."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    return key if key in COLUMNS else None


def _columns(names: Iterable[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Each known column's field, and the problems of the others (unknown, blank, repeated)."""
    known: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for name in names:
        field = canonical_column(name)
        if not name.strip():
            problems.append(("(column)", "a column has no name"))
        elif field is None:
            guess = did_you_mean(name.strip(), [*COLUMNS, *ALIASES])
            hint = f"did you mean {ALIASES.get(guess, guess)!r}?" if guess else "check its spelling or remove it"
            problems.append((name.strip(), f"unknown column; {hint}"))
        elif field in known.values():
            first = next(k for k, v in known.items() if v == field)
            problems.append((name.strip(), f"the same field as the column {first!r}; give it once"))
        else:
            known[name] = field
    return known, problems


# -- values ------------------------------------------------------------------------------------------
def _value(field: str, value: Any) -> Any:
    """A cell's value for ``field``: list fields split on commas (or a JSON array), object fields parsed
    from JSON text. Raises ValueError naming what is wrong."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if field in LIST_FIELDS:
        if text.startswith("["):
            items = orjson.loads(text)
            if not isinstance(items, list):
                raise ValueError("expected a JSON array")
            return items
        return [item.strip() for item in text.split(",") if item.strip()]
    if field in OBJECT_FIELDS:
        data = orjson.loads(text)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data
    return text


def _given(data: Mapping[str, Any], columns: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The non-empty values of ``data``'s known columns, by field, and the problems of unreadable ones."""
    given: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for column, value in data.items():
        field = columns.get(column)
        if field is None or value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            parsed = _value(field, value)
        except (ValueError, orjson.JSONDecodeError) as exc:
            problems.append((field, f"not valid: {exc}"))
            continue
        if parsed not in ([], {}):
            given[field] = parsed
    return given, problems


# -- rows --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _OneError:
    """One error of a ValidationError, in the shape ``ConfigError.from_validation`` reads."""

    error: Any

    def errors(self) -> list[Any]:
        return [self.error]


def _validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of ``exc`` as (column, problem); an identity field is named as its own column."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if loc[:1] == ("identity",) and len(loc) > 1:
            loc = loc[1:]
        config = ConfigError.from_validation(_OneError({**error, "loc": loc}), default="row")
        problems.append((config.field, config.problem))
    return problems


def _default_query(given: Mapping[str, Any]) -> str | None:
    if any(given.get(name) for name in STRUCTURED_FIELDS):
        return PLACEHOLDER_QUERY
    if given.get("simple_filters") is not None or given.get("filters") is not None:
        return FILTER_QUERY
    return None


def _lookup_fields(given: dict[str, Any]) -> dict[str, Any]:
    """A lookup row's request fields: its identity, a query naming it, people mode, a lookup's max_results."""
    signals = {name: given.pop(name) for name in IDENTITY_FIELDS if name in given}
    try:
        identity = PersonIdentity(**signals)
    except ValidationError as exc:
        raise _Invalid(_validation_problems(exc)) from None
    given["identity"] = identity.model_dump(mode="json", exclude_defaults=True)
    given.setdefault("query", f"lookup {identity.describe()}")
    given.setdefault("max_results", LOOKUP_MAX_RESULTS)
    return given


def parse_row(data: Mapping[str, Any], *, row: int, line: int = 0, misspelt: bool = False) -> BatchRow:
    """One row from ``data`` (column -> value: CSV text or JSON values), validated as a search or a lookup.

    Unknown columns are problems, and the row's other fields are checked too. ``misspelt``: the file's
    header had problems (a misspelt ``query`` column), so a missing query is not one more problem.

    Raises:
        BatchValidationError: listing every problem of the row (its source is ``line N`` or ``row N``).
    """
    where = f"line {line}" if line else f"row {row}"
    columns, problems = _columns(data)
    given, unreadable = _given(data, columns)
    problems += unreadable
    try:
        checked = _checked(given, lenient=misspelt or bool(problems))
    except _Invalid as invalid:
        problems += invalid.problems
    if problems:
        raise BatchValidationError(where, [BatchProblem(where, f, p) for f, p in problems])
    return BatchRow(row=row, line=line, **checked)


def _checked(given: dict[str, Any], *, lenient: bool = False) -> dict[str, Any]:
    """The kind and request fields of a row, validated as a SearchRequest. Raises _Invalid.

    ``lenient``: the row has other problems already; a missing query is then not reported."""
    kind: RowKind = "lookup" if any(name in given for name in IDENTITY_FIELDS) else "search"
    if kind == "lookup":
        given = _lookup_fields(given)
    elif "query" not in given:
        query = _default_query(given) or (PLACEHOLDER_QUERY if lenient else None)
        if query is None:
            raise _Invalid([("query", "missing: a search row needs a query, structured fields (titles, companies, "
                                      "locations, schools) or filters; a lookup row needs identity fields")])
        given["query"] = query
    try:
        request = SearchRequest.model_validate(given)
    except ValidationError as exc:
        raise _Invalid(_validation_problems(exc)) from None
    fields = request.model_dump(mode="json", include=set(given) - {"identity"})
    if "identity" in given:
        fields["identity"] = given["identity"]
    return {"kind": kind, "fields": fields}


def rows_from(items: Iterable[BatchRow | SearchRequest | Mapping[str, Any]], source: str = "rows") -> list[BatchRow]:
    """Rows numbered from 1, from rows, requests (used as they are, defaults included) or mappings (as a
    JSONL line: ``{"query": ..., "max_results": 20}``, ``{"email": ...}``).

    Raises:
        BatchValidationError: listing every invalid mapping's problems (``row N: field: problem``).
    """
    rows: list[BatchRow] = []
    problems: list[BatchProblem] = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, BatchRow):
            rows.append(item.model_copy(update={"row": number}) if item.row != number else item)
        elif isinstance(item, SearchRequest):
            kind: RowKind = "lookup" if item.identity is not None else "search"
            rows.append(BatchRow(row=number, kind=kind, fields=item.model_dump(mode="json", exclude_none=True)))
        else:
            try:
                rows.append(parse_row(item, row=number))
            except BatchValidationError as exc:
                problems += exc.problems
    if problems:
        raise BatchValidationError(source, problems)
    return rows


# -- files -------------------------------------------------------------------------------------------
def _csv_records(text: str) -> Iterator[tuple[int, dict[str, str] | None, list[tuple[str, str]]]]:
    """(line, cells by known column, problems) per CSV record; line 1 (the header) carries its problems."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        yield 1, None, [("header", "the first line must name the columns (query, mode, max_results, ...)")]
        return
    columns, problems = _columns(header)
    if problems:
        yield 1, None, problems
    last = reader.line_num
    for cells in reader:
        start, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        extra = len(cells) - len(header)
        if extra > 0 and any(cell.strip() for cell in cells[len(header):]):
            yield start, None, [("(cells)", f"{len(cells)} cells, but the header names {len(header)} columns")]
            continue
        yield start, {column: cell for column, cell in zip(header, cells, strict=False) if column in columns}, []


def _jsonl_records(text: str) -> Iterator[tuple[int, dict[str, Any] | None, list[tuple[str, str]]]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield number, None, [("(json)", f"not valid JSON: {exc.msg} (at character {exc.pos + 1})")]
            continue
        if not isinstance(data, dict):
            yield number, None, [("(json)", "expected a JSON object ({\"query\": ...})")]
            continue
        yield number, data, []


def _read(path: Path) -> str:
    if path.suffix.lower() not in BATCH_SUFFIXES:
        raise ConfigError(str(path), f"use a .csv file (with a header) or a .jsonl file, got "
                                     f"{path.suffix or 'no extension'!r}")
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte order mark is not a column name
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from exc


def validate_file(path: str | Path) -> list[BatchRow]:
    """Read a batch file (``.csv`` with a header, or ``.jsonl``) and validate every row; nothing is sent.

    Returns:
        The rows in file order, numbered from 1.

    Raises:
        ConfigError: the file cannot be read or has another extension.
        BatchValidationError: every invalid line and field (header problems on line 1), or no rows.
    """
    path = Path(path)
    text = _read(path)
    is_csv = path.suffix.lower() == ".csv"
    records = _csv_records(text) if is_csv else _jsonl_records(text)
    rows: list[BatchRow] = []
    problems: list[BatchProblem] = []
    count = 0
    for line, data, found in records:
        problems += [BatchProblem(f"line {line}", field, problem) for field, problem in found]
        if data is None:
            continue
        count += 1
        try:
            header_bad = is_csv and bool(problems) and problems[0].where == "line 1"
            rows.append(parse_row(data, row=count, line=line, misspelt=header_bad))
        except BatchValidationError as exc:
            problems += exc.problems
    if not count and not problems:
        problems.append(BatchProblem("line 1", "(file)", "no rows: give one search or lookup per line"))
    if problems:
        raise BatchValidationError(str(path), problems, rows)
    return rows


def batch_id_of(rows: Sequence[BatchRow], options: Mapping[str, Any]) -> str:
    """A stable id of a batch: a hash of its normalized rows, in order, and ``options`` (what changes what
    the rows do, e.g. ``{"target": "sandbox"}``); the same file and options give the same id. 16 hex digits."""
    document = {"version": 1, "rows": [row.normalized() for row in rows], "options": dict(options)}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
