"""The HTML comparison report: what a team lead would forward (parsed here, and rendered in a real browser).

The browser checks run Debian's ``chromium`` headless (``.ci/run`` installs it); where it is absent
they are skipped with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from aggregator.compare import Comparison, compare
from aggregator.merge import merge_hits
from aggregator.models import ErrorInfo, Hit, Person, ProviderOutcome, SearchReport, SearchRequest
from aggregator.render import comparison_tables
from aggregator.report_html import render_html, tick_step
from tests.conftest import AggFactory

T0 = datetime(2026, 11, 21, tzinfo=UTC)
QUERY = "VP of Engineering at Series B SaaS startups in New York"
EXTRUCT_REASON = "people mode not supported"
HOSTILE_NAME = '<script>document.title="pwned"</script>Eve'
HOSTILE_TITLE = "<img src=x onerror=\"document.title='img'\">CTO"
SECTIONS = {"providers", "overlap", "coverage", "timing", "records"}
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no `chromium` on PATH: install Debian's chromium package (CI's .ci/run does) to run "
                             "the headless-browser checks of the HTML report")


class Page(HTMLParser):
    """The parts of the report the tests read: sections, meta tags, table cells, chart elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.meta: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.svgs: dict[str, list[tuple[str, dict[str, str | None], str]]] = {}
        self.tags: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._svg: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if self._cell is not None and tag in ("li", "span", "br"):
            self._cell.append(" ")
        if tag == "section":
            self.sections.append(found.get("id") or "")
        elif tag == "meta" and found.get("name"):
            self.meta[found["name"] or ""] = found.get("content") or ""
        elif tag == "table":
            self._table = found.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "svg":
            self._svg = found.get("id") or ""
            self.svgs[self._svg] = []
        elif self._svg is not None:
            self.svgs[self._svg].append((tag, found, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._svg is not None and self.svgs[self._svg]:
            tag, attrs, text = self.svgs[self._svg][-1]
            self.svgs[self._svg][-1] = (tag, attrs, text + data)

    def rows(self, table: str) -> list[dict[str, str]]:
        head, *body = self.tables[table]
        return [dict(zip(head, row, strict=True)) for row in body]


async def sandbox_report(make_aggregator: AggFactory) -> SearchReport:
    """A real people compare on the sandbox: Sixtyfour and Orbit run, Extruct (company only) is skipped."""
    agg = await make_aggregator(providers=("sixtyfour", "orbit", "extruct"), n_companies=1000)
    report = await agg.search(QUERY, mode="people", max_results=20)
    assert [o.status for o in report.outcomes if o.provider == "extruct"] == ["skipped"]
    return report


def person_hit(provider: str, slug: str, rank: int, **fields: str) -> Hit:
    fields.setdefault("full_name", slug.title())
    return Hit(provider=provider, provider_record_id=f"{provider}:{slug}", rank=rank, retrieved_at=T0,
               entity=Person(linkedin_url=f"https://www.linkedin.com/in/{slug}", **fields))


def hostile_hit(provider: str = "sixtyfour", rank: int = 99) -> Hit:
    """A record whose provider-supplied strings are markup (untrusted data must show as text)."""
    return person_hit(provider, "eve", rank, full_name=HOSTILE_NAME, title=HOSTILE_TITLE,
                      company_name="Acme & <b>Sons</b>", location="x" * 120)


def hand_report() -> SearchReport:
    """Found, failed and skipped providers, a conflict, and a hostile record."""
    hits = [person_hit("sixtyfour", "ann", 1, title="CTO", location="New York"),
            person_hit("orbit", "ann", 2, title="CTO", location="NYC"),
            person_hit("orbit", "bob", 1, title="VP Eng"), hostile_hit()]
    outcomes = (
        ProviderOutcome(provider="sixtyfour", status="found", records=2, credits=4, started_at=T0, elapsed_s=80,
                        time_to_first_result_s=78),
        ProviderOutcome(provider="orbit", status="partial", records=2, credits=10, started_at=T0, elapsed_s=61,
                        time_to_first_result_s=25, note="deadline reached after 2 of 3 pages"),
        ProviderOutcome(provider="acme", status="failed", started_at=T0 + timedelta(seconds=2), elapsed_s=3,
                        error=ErrorInfo(type="AuthError", message="401 from <acme>: bad key")),
        ProviderOutcome(provider="extruct", status="skipped",
                        note="people mode not supported (extruct supports company mode only)"),
    )
    return SearchReport(run_id="r-hand", request=SearchRequest(query="CTOs </title><script>x()</script>"),
                        started_at=T0, finished_at=T0 + timedelta(seconds=81), elapsed_s=81, sandbox=True,
                        outcomes=outcomes, records=merge_hits(hits, "people"))


# -- the document ------------------------------------------------------------------------------------

async def test_a_sandbox_compare_report_lists_every_provider_with_the_skip_reason_and_every_record(
        make_aggregator: AggFactory) -> None:
    report = await sandbox_report(make_aggregator)
    page = Page(render_html(compare(report)))

    assert set(page.sections) == SECTIONS
    assert page.meta["viewport"].startswith("width=device-width")
    summary = {row["Provider"]: row for row in page.rows("summary")}
    assert set(summary) == {"sixtyfour", "orbit", "extruct"}
    assert summary["extruct"]["Status"] == "skipped" and EXTRUCT_REASON in summary["extruct"]["Reason / note"]
    assert {summary[p]["Status"] for p in ("sixtyfour", "orbit")} == {"found"}
    assert "First result (virtual s)" in summary["orbit"]  # the clock is named
    orbit = report.outcome("orbit")
    unique = sum(1 for r in report.records if r.providers == ("orbit",))
    assert summary["orbit"]["Credits / unique record"] == f"{orbit.credits / unique:.2f}"

    records = page.rows("merged-records")
    assert len(records) == len(report.records)
    consensus = [int(row["Consensus"].split(" of ")[0]) for row in records]
    assert consensus == sorted(consensus, reverse=True) and consensus[0] == 2
    assert {"Name", "Title", "Company", "Location", "Found by (rank)", "Provenance"} <= set(records[0])
    assert "orbit #" in records[0]["Found by (rank)"] and "sixtyfour #" in records[0]["Found by (rank)"]
    assert "orbit + sixtyfour: name" in records[0]["Provenance"]
    names = {(r.entity.full_name or "") for r in report.records}  # type: ignore[union-attr]
    assert {row["Name"].split(" linkedin.com/in/")[0] for row in records} == names


def test_the_timeline_has_round_labelled_ticks_up_to_the_end_of_the_run() -> None:
    page = Page(render_html(compare(hand_report())))
    labels = [float(text) for tag, attrs, text in page.svgs["timeline"] if attrs.get("class") == "tick-label"]
    assert labels == [0, 20, 40, 60, 80, 100]  # 81 virtual seconds, step 20
    assert any("virtual s" in text for _, _, text in page.svgs["timeline"])
    assert [tick_step(s) for s in (0.4, 6, 7, 81, 1000, 3600)] == [0.1, 1, 2, 20, 200, 1000]


def test_failed_and_partial_providers_show_their_reason_and_credits_per_unique_record() -> None:
    page = Page(render_html(compare(hand_report())))
    summary = {row["Provider"]: row for row in page.rows("summary")}

    assert summary["acme"]["Status"] == "failed"
    assert summary["acme"]["Reason / note"] == "AuthError: 401 from <acme>: bad key"
    assert summary["orbit"]["Reason / note"] == "deadline reached after 2 of 3 pages"
    assert summary["extruct"]["Credits"] == "—" and EXTRUCT_REASON in summary["extruct"]["Reason / note"]
    # orbit: 10 credits, 2 records, 1 only it found (bob); sixtyfour: 4 credits, 2 records, 1 unique (eve)
    assert (summary["orbit"]["Credits / record"], summary["orbit"]["Credits / unique record"]) == ("5.00", "10.00")
    assert summary["acme"]["Credits / unique record"] == "—"
    records = page.rows("merged-records")
    assert records[0]["Name"].startswith("Ann") and "location differs: orbit" in records[0]["Provenance"]


def test_every_provider_supplied_string_is_escaped() -> None:
    html = render_html(compare(hand_report()))

    assert "<script" not in html and "<img" not in html and "<b>Sons" not in html and "<acme>" not in html
    assert escape(HOSTILE_NAME) in html and escape(HOSTILE_TITLE) in html
    assert "&lt;/title&gt;&lt;script&gt;x()" in html  # the query, in <title> and <h1>
    assert "http://" not in html and "https://" not in html  # offline: no external assets or links
    page = Page(html)
    assert [row["Name"] for row in page.rows("merged-records")][-1].startswith(HOSTILE_NAME)


def test_the_comparison_keeps_skipped_providers_apart_and_records_sorted_by_consensus() -> None:
    comparison: Comparison = compare(hand_report())

    assert [p.provider for p in comparison.providers] == ["sixtyfour", "orbit", "acme"]
    assert [(s.provider, s.reason[:25]) for s in comparison.skipped] == [("extruct", "people mode not supported")]
    assert [r.consensus for r in comparison.merged] == [2, 1, 1]
    ann = comparison.merged[0]
    assert ann.key == "linkedin.com/in/ann" and ann.found_by == {"sixtyfour": 1, "orbit": 2}
    assert ann.provenance["title"] == ("orbit", "sixtyfour") and ann.conflicts == {"location": ("orbit",)}
    assert comparison.credits == 14 and comparison.credits_per_record == pytest.approx(14 / 3)


# -- in a real browser -------------------------------------------------------------------------------

def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50, check=False,
                          env={**os.environ, "HOME": str(tmp)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
@pytest.mark.timeout(150)  # two browser runs; a cold start (font cache) can take a while on a busy runner
async def test_a_headless_browser_renders_every_section_and_shows_a_script_name_as_text(
        make_aggregator: AggFactory, tmp_path: Path) -> None:
    report = await sandbox_report(make_aggregator)
    report = report.model_copy(update={"records": (*report.records, *merge_hits([hostile_hit()], "people"))})
    file = tmp_path / "report.html"
    file.write_text(render_html(compare(report)), encoding="utf-8")

    dom = chromium(tmp_path, "--dump-dom", file.as_uri()).stdout
    page = Page(dom)
    assert set(page.sections) == SECTIONS and "script" not in page.tags and "img" not in page.tags
    assert f"<title>deepsearch compare: {QUERY}</title>" in dom  # no provider script ran (it sets the title)
    assert escape(HOSTILE_NAME, quote=False) in dom  # shown as text
    assert EXTRUCT_REASON in dom and {"overlap-matrix", "coverage-bars", "timeline"} <= set(page.svgs)
    shot = tmp_path / "wide.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", file.as_uri())
    assert png_size(shot) == (1280, 2000) and shot.stat().st_size > 50_000  # a page, not a blank


def overflow(tmp: Path, html: str, width: int) -> dict[str, str]:
    """How ``html`` lays out ``width`` px wide: ``{"page": "scrollWidth/clientWidth", "boxes": ...}``.

    Headless Chromium lays a window out at least 500 px wide, so the page goes in an iframe of that width
    (a same-origin ``srcdoc`` one, which the probe script of the outer page can measure).
    """
    probe = ("<script>onload=()=>{const w=document.querySelector('iframe').contentWindow,d=w.document,"
             "e=d.documentElement,b=document.body.dataset;b.width=w.innerWidth;"
             "b.page=e.scrollWidth+'/'+e.clientWidth;"
             "b.boxes=[...d.querySelectorAll('.scroll')].map(s=>s.scrollWidth+'/'+s.clientWidth).join(' ')}</script>")
    frame = tmp / f"frame{width}.html"
    frame.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe width="{width}" height="2400" '
                     f'style="border:0" srcdoc="{escape(html)}"></iframe>{probe}</body></html>', encoding="utf-8")
    dom = chromium(tmp, "--dump-dom", f"--window-size={width + 200},2400", frame.as_uri()).stdout
    body = Page(dom)
    found = dict(re.findall(r'data-(width|page|boxes)="([^"]*)"', dom))
    assert body.sections == [] and found.get("width") == str(width), dom[:500]
    return found


def fits(sizes: str) -> bool:
    return all(int(scroll) <= int(client) for scroll, client in (pair.split("/") for pair in sizes.split()))


@needs_chromium
@pytest.mark.timeout(150)
def test_the_report_fits_a_laptop_screen_and_a_phone_never_scrolls_the_page_sideways(tmp_path: Path) -> None:
    """At 1280 px nothing scrolls sideways; at 390 px (a phone) the page itself does not: wide tables and
    charts scroll in their own box, and charts shrink first."""
    html = render_html(compare(hand_report()))

    laptop = overflow(tmp_path, html, 1280)
    assert fits(laptop["page"]) and fits(laptop["boxes"]), laptop
    phone = overflow(tmp_path, html, 390)
    assert fits(phone["page"]), phone
    assert not fits(phone["boxes"])  # the summary and records tables scroll in their boxes


# -- in the terminal ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["people", "company"])
def test_the_terminal_comparison_reads_at_80_columns_with_every_provider_and_reason(mode: str) -> None:
    report = hand_report()
    if mode == "company":
        report = report.model_copy(update={"request": SearchRequest(query="freight SaaS", mode="company"),
                                           "records": ()})
    console = Console(width=80, record=True, color_system=None)
    for table in comparison_tables(compare(report)):
        console.print(table)
    text = console.export_text()
    lines = text.splitlines()

    assert "…" not in text and max(len(line) for line in lines) <= 80
    assert all(word in text for word in ("Records", "Unique", "First", "result", "Total", "Credits", "unique"))
    statuses = {words[0]: words[1] for words in map(str.split, lines)
                if len(words) == 8 and words[1] in ("found", "partial", "no_result", "failed", "skipped")}
    assert statuses == {"sixtyfour": "found", "orbit": "partial", "acme": "failed", "extruct": "skipped"}
    flat = " ".join(text.split())
    assert "acme: failed — AuthError: 401 from <acme>: bad key" in flat
    assert "extruct: skipped — people mode not supported (extruct supports company mode only)" in flat
    assert "virtual seconds (sandbox clock)" in flat
    assert all(field in flat for field in compare(report).fields)  # the coverage table, fields down
