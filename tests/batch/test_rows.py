"""Batch files: CSV and JSONL rows become validated searches or lookups; every bad line and field is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.batch import BatchRow, BatchValidationError, batch_id_of, rows_from, validate_file
from aggregator.batch.rows import LOOKUP_MAX_RESULTS, MAX_LISTED_PROBLEMS
from aggregator.errors import ConfigError
from aggregator.models import SearchRequest


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(error: BatchValidationError) -> list[tuple[str, str]]:
    return [(p.where, p.field) for p in error.problems]


def test_csv_rows_take_list_fields_comma_separated_or_as_json_and_leave_empty_cells_to_the_settings(
        tmp_path: Path) -> None:
    path = write(tmp_path, "rows.csv", "query,Max-Results,providers,title,company,budget\n"
                                       "VP of Engineering in New York,20,\"orbit, sixtyfour\",,,\n"
                                       ",,,\"CTO,CEO\",\"[\"\"Acme, Inc.\"\"]\",12.5\n")
    first, second = validate_file(path)

    assert first == BatchRow(row=1, line=2, kind="search", fields={
        "query": "VP of Engineering in New York", "max_results": 20, "providers": ["orbit", "sixtyfour"]})
    assert second.kind == "search" and second.line == 3
    assert second.fields == {"query": "*", "titles": ["CTO", "CEO"], "companies": ["Acme, Inc."], "budget": 12.5}
    assert SearchRequest(**second.fields).search_text == "CTO or CEO at Acme, Inc."  # the placeholder is not sent


def test_jsonl_rows_are_searches_or_lookups_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.jsonl",
                 '{"query": "CTO in Berlin", "mode": "people", "strategy": "fallback", "min_results": 3,'
                 ' "providers": "orbit,sixtyfour"}\n\n'
                 '{"linkedin_url": "https://www.linkedin.com/in/jane-doe", "phone": "+1 555 010 0000"}\n'
                 '{"mode": "company", "simple_filters": {"hq_country_iso2": {"$eq": "US"}}, "max_results": 5}\n')
    search, lookup, filtered = validate_file(path)

    assert search.fields["providers"] == ["orbit", "sixtyfour"] and search.fields["min_results"] == 3
    assert (lookup.row, lookup.line, lookup.kind) == (2, 3, "lookup")
    assert lookup.fields == {"query": "lookup linkedin https://www.linkedin.com/in/jane-doe; phone +1 555 010 0000",
                             "identity": {"linkedin_url": "https://www.linkedin.com/in/jane-doe",
                                          "phone_number": "+1 555 010 0000"},
                             "max_results": LOOKUP_MAX_RESULTS}
    assert filtered.fields["query"] == "filter search" and filtered.line == 4


def test_every_bad_line_and_field_is_named_in_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.csv", "query,max_result,mode,email,titel\n"
                                       "CTO,5,people,,\n"
                                       "CTO,,pets,,\n"
                                       ",,,not-an-email,\n"
                                       ",,,,\n"
                                       "\"multi\nline\",,company,,\n"
                                       "CTO,,,,,extra\n")
    with pytest.raises(BatchValidationError) as caught:
        validate_file(path)

    assert problems(caught.value) == [("line 1", "max_result"), ("line 1", "titel"), ("line 3", "mode"),
                                      ("line 4", "email"), ("line 8", "(cells)")]
    message = str(caught.value)
    assert message.startswith(f"{path}: 5 problems on 4 lines; nothing was run:")
    assert "line 1: max_result: unknown column; did you mean 'max_results'?" in message
    assert "line 1: titel: unknown column; did you mean 'titles'?" in message
    assert "line 3: mode: Input should be 'people' or 'company' (got 'pets')" in message
    assert isinstance(caught.value, ConfigError)  # a usage error: the CLI exits 2


def test_jsonl_problems_name_the_line_and_every_field_of_it(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.jsonl", '{"query": "CTO", "max_results": 0, "budget": -1}\n'
                                         '[1, 2]\n'
                                         'not json\n'
                                         '{"quer": "CTO"}\n'
                                         '{"linkedin_url": "https://example.com/x", "mode": "company"}\n'
                                         '{"max_results": 5}\n')
    with pytest.raises(BatchValidationError) as caught:
        validate_file(path)

    assert problems(caught.value) == [("line 1", "max_results"), ("line 1", "budget"), ("line 2", "(json)"),
                                      ("line 3", "(json)"), ("line 4", "quer"), ("line 5", "linkedin_url"),
                                      ("line 6", "query")]
    assert "line 4: quer: unknown column; did you mean 'query'?" in str(caught.value)
    assert "line 6: query: missing" in str(caught.value)


def test_the_listing_stops_at_twenty_problems_and_says_how_many_more(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.csv", "query,max_results\n" + "CTO,0\n" * 30)
    with pytest.raises(BatchValidationError) as caught:
        validate_file(path)

    assert len(caught.value.problems) == 30
    listed = [line for line in str(caught.value).splitlines() if line.startswith("  line")]
    assert len(listed) == MAX_LISTED_PROBLEMS and listed[0].startswith("  line 2: max_results:")
    assert str(caught.value).endswith("... and 10 more")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("rows.txt", "query\nCTO\n", "use a .csv file"),
    ("missing.csv", None, "file not found"),
    ("empty.csv", "", "the first line must name the columns"),
    ("header-only.csv", "query,max_results\n", "no rows"),
    ("empty.jsonl", "\n\n", "no rows"),
])
def test_a_file_that_is_not_a_batch_is_refused(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        validate_file(path)


def test_a_spreadsheet_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffquery\nCTO in Berlin\n".encode())
    (row,) = validate_file(path)
    assert row.fields == {"query": "CTO in Berlin"}


def test_rows_from_the_library_take_requests_mappings_and_rows_and_number_them() -> None:
    request = SearchRequest(query="CTO in Berlin", max_results=7)
    rows = rows_from([request, {"query": "CEO", "provider": "orbit"},
                      BatchRow(row=9, line=4, kind="search", fields={"query": "x"})])

    assert [r.row for r in rows] == [1, 2, 3] and rows[2].line == 4
    assert SearchRequest(**rows[0].fields) == request
    assert rows[1].fields == {"query": "CEO", "providers": ["orbit"]}
    with pytest.raises(BatchValidationError) as caught:
        rows_from([{"query": "ok"}, {"query": ""}, {"email": "bad"}])
    assert problems(caught.value) == [("row 2", "query"), ("row 3", "email")]


def test_the_batch_id_is_the_same_for_the_same_rows_and_options_only(tmp_path: Path) -> None:
    csv_rows = validate_file(write(tmp_path, "a.csv", "query,max_results,providers\nCTO,5,orbit\n"))
    jsonl_rows = validate_file(write(tmp_path, "b.jsonl", '\n{"query": "CTO", "max_results": 5,'
                                                          ' "providers": ["orbit"]}\n'))
    sandbox = {"target": "sandbox"}

    assert batch_id_of(csv_rows, sandbox) == batch_id_of(jsonl_rows, sandbox)  # lines and format aside
    assert len(batch_id_of(csv_rows, sandbox)) == 16
    assert batch_id_of(csv_rows, sandbox) != batch_id_of(csv_rows, {"target": "live"})
    other = validate_file(write(tmp_path, "c.csv", "query,max_results,providers\nCTO,6,orbit\n"))
    assert batch_id_of(other, sandbox) != batch_id_of(csv_rows, sandbox)
