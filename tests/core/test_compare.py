"""Comparison metrics and the HTML report (parsed, charts checked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from aggregator.compare import compare
from aggregator.merge import merge_hits
from aggregator.models import ErrorInfo, Hit, Person, ProviderOutcome, SearchReport, SearchRequest
from aggregator.report_html import render_html

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def person_hit(provider: str, slug: str, rank: int, **fields: str) -> Hit:
    return Hit(provider=provider, provider_record_id=f"{provider}:{slug}", rank=rank, retrieved_at=T0,
               entity=Person(full_name=slug.title(), linkedin_url=f"https://www.linkedin.com/in/{slug}", **fields))


def report() -> SearchReport:
    hits = [person_hit("a", "x", 1, title="CTO", email="x@a.io"), person_hit("a", "y", 2, title="CTO"),
            person_hit("b", "y", 1, location="NYC"), person_hit("b", "z", 2)]
    outcomes = (
        ProviderOutcome(provider="a", status="found", records=2, credits=0, started_at=T0, elapsed_s=60,
                        time_to_first_result_s=60),
        ProviderOutcome(provider="b", status="found", records=2, credits=12, started_at=T0 + timedelta(seconds=5),
                        elapsed_s=100, time_to_first_result_s=15),
        ProviderOutcome(provider="c", status="failed", error=ErrorInfo(type="AuthError", message="bad <key>"),
                        started_at=T0, elapsed_s=1),
        ProviderOutcome(provider="d", status="skipped", note="company mode only"),
    )
    return SearchReport(run_id="r1", request=SearchRequest(query="CTOs <in> NYC"), started_at=T0,
                        finished_at=T0 + timedelta(seconds=105), elapsed_s=105, sandbox=True, outcomes=outcomes,
                        records=merge_hits(hits, "people"))


def test_comparison_counts_results_unique_overlap_and_coverage() -> None:
    comparison = compare(report())
    rows = {p.provider: p for p in comparison.providers}
    assert set(rows) == {"a", "b", "c"}  # skipped providers are left out
    assert (rows["a"].results, rows["a"].unique, rows["a"].overlap) == (2, 1, {"b": 1, "c": 0})
    assert (rows["b"].results, rows["b"].unique, rows["b"].overlap["a"]) == (2, 1, 1)
    assert rows["a"].coverage["email"] == 0.5 and rows["a"].coverage["title"] == 1.0
    assert rows["b"].coverage["location"] == 0.5 and rows["b"].coverage["LinkedIn"] == 1.0
    assert rows["b"].started_s == 5 and rows["b"].time_to_first_result_s == 15 and rows["b"].credits == 12
    assert rows["c"].error == "bad <key>" and rows["c"].results == 0


class _Svg(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svgs: dict[str, list[dict[str, str | None]]] = {}
        self.current: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.current = found.get("id")
            self.svgs[self.current or ""] = []
        elif self.current is not None:
            self.svgs[self.current].append({"tag": tag, **found})

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.current = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_report_is_self_contained_and_has_its_three_charts() -> None:
    html = render_html(compare(report()))
    parser = _Svg()
    parser.feed(html)

    assert set(parser.svgs) == {"overlap-matrix", "coverage-bars", "timeline"}
    cells = [e for e in parser.svgs["overlap-matrix"] if e.get("class") == "cell"]
    assert len(cells) == 9 and [c["data-value"] for c in cells[:3]] == ["2", "1", "0"]
    bars = [e for e in parser.svgs["coverage-bars"] if e.get("class") == "bar"]
    assert len(bars) == 3 * 6 and {b["data-provider"] for b in bars} == {"a", "b", "c"}
    assert [e for e in parser.svgs["timeline"] if e.get("class") == "first-result"]
    assert "<script" not in html and "http://" not in html and "https://" not in html  # offline, no assets
    assert "CTOs &lt;in&gt; NYC" in html and "bad &lt;key&gt;" in html  # escaped
