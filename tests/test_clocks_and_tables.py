"""Issue 14, items 8 and 9 (part): every time a person reads says its clock, wall time by default;
``runs`` counts merged records; tables stay readable at 80 columns; run ids by unique prefix.

- The journal stamps runs with real (wall-clock) times and the real seconds a run took, besides the
  run's own clock (virtual on the sandbox); journals written before that still load.
- ``runs`` lists wall-clock creation times and the merged records of the report (or merged so far);
  ``show`` prints the wall time a run took and labels a sandbox run's virtual seconds.
- ``outcomes_table``, ``records_table`` and ``runs_table`` at 80 columns: nothing cut to an ellipsis or
  dropped, the reason a provider was skipped shown, the time column named by its clock.
- ``show`` and ``resume`` take a unique prefix of a run id; an ambiguous one is a usage error listing
  the candidates; the ids ``runs`` shows are accepted.
"""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from aggregator.cli import main
from aggregator.jobstore import InMemoryJobStore, RunIdError, short_run_ids
from aggregator.journal import SqliteJournal
from aggregator.merge import merge_hits
from aggregator.models import Company, Evidence, Hit, Person, ProviderOutcome, SearchReport, SearchRequest
from aggregator.render import outcomes_table, records_table, runs_table

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
            "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX")
OLD_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL,
                   request_json TEXT NOT NULL, report_json TEXT);
CREATE INDEX runs_created_at ON runs (created_at);
CREATE TABLE jobs (run_id TEXT NOT NULL, provider TEXT NOT NULL, idempotency_key TEXT NOT NULL, state TEXT NOT NULL,
                   request_json TEXT NOT NULL, job_json TEXT, checkpoint_json TEXT, history_json TEXT NOT NULL,
                   PRIMARY KEY (run_id, provider));
CREATE TABLE hits (run_id TEXT NOT NULL, provider TEXT NOT NULL, seq INTEGER NOT NULL, hit_json TEXT NOT NULL,
                   PRIMARY KEY (run_id, provider, seq));
CREATE TABLE outcomes (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, provider TEXT NOT NULL,
                       outcome_json TEXT NOT NULL);
"""  # the journal's schema before wall-clock times were kept


def render(renderable: Any, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def flat(text: str) -> str:
    return " ".join(text.split())


def deepsearch(tmp_path: Path, *args: str, columns: int = 80) -> Result:
    """``deepsearch *args --journal tmp/journal.sqlite`` in process, on a fast in-process sandbox."""
    config = tmp_path / "fast.toml"
    config.write_text("[sandbox]\ntime_scale = 0.002\n")
    env: dict[str, str | None] = {name: None for name in KEY_VARS}
    env |= {"DEEPSEARCH_CONFIG": str(config), "COLUMNS": str(columns)}
    return CliRunner().invoke(main, [*args, "--journal", str(tmp_path / "journal.sqlite")], env=env)


def report(run_id: str = "run-1", *, sandbox: bool = True, elapsed_s: float = 164.8, wall_s: float | None = None,
           records: tuple[Any, ...] = (), outcomes: tuple[ProviderOutcome, ...] = (),
           request: SearchRequest | None = None) -> SearchReport:
    return SearchReport(run_id=run_id, request=request or SearchRequest(query="CTO in Berlin"), started_at=NOW,
                        finished_at=NOW + timedelta(seconds=elapsed_s), elapsed_s=elapsed_s, wall_s=wall_s,
                        sandbox=sandbox, outcomes=outcomes, records=records)


# -- item 8: the journal keeps wall-clock times ----------------------------------------------------

@asynccontextmanager
async def store_of(kind: str, tmp_path: Path, now: Callable[[], datetime]) -> AsyncIterator[Any]:
    if kind == "memory":
        yield InMemoryJobStore(now=now)
    else:
        async with SqliteJournal(tmp_path / "journal.sqlite", now=now) as journal:
            yield journal


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_runs_are_stamped_with_wall_clock_times_not_the_runs_clock(kind: str, tmp_path: Path) -> None:
    wall = [NOW]
    async with store_of(kind, tmp_path, lambda: wall[0]) as store:
        virtual_start = NOW + timedelta(hours=5)  # a sandbox clock runs ahead of real time
        await store.record_run("run-1", SearchRequest(query="CTO in Berlin"), virtual_start)
        wall[0] = NOW + timedelta(seconds=4.9)
        await store.finish_run("run-1", "done", report(elapsed_s=164.8))

        (summary,) = await store.runs()
        state = await store.run("run-1")
    assert summary.created_at == NOW and summary.created_on == "wall clock"
    assert summary.finished_at == NOW + timedelta(seconds=4.9)
    assert summary.wall_s == pytest.approx(4.9) and summary.virtual_s == 164.8 and summary.sandbox is True
    assert state is not None and state.created_at == NOW and state.wall_s == pytest.approx(4.9)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_the_wall_seconds_of_a_run(kind: str, tmp_path: Path) -> None:
    """The report's own ``wall_s`` first; off the sandbox ``elapsed_s`` is real seconds; a sandbox run
    resumed by a process that did not measure its wall time has none (never virtual seconds)."""
    wall = [NOW]
    request = SearchRequest(query="CTO in Berlin")
    async with store_of(kind, tmp_path, lambda: wall[0]) as store:
        for run_id in ("measured", "live", "resumed"):
            await store.record_run(run_id, request, NOW)
        wall[0] = NOW + timedelta(seconds=30)
        await store.finish_run("measured", "done", report("measured", wall_s=2.5))
        await store.finish_run("live", "done", report("live", sandbox=False, elapsed_s=12.0))
        await store.finish_run("resumed", "interrupted", None)
        await store.finish_run("resumed", "done", report("resumed", elapsed_s=164.8))
        states = {run_id: await store.run(run_id) for run_id in ("measured", "live", "resumed")}
    assert {run_id: state.wall_s for run_id, state in states.items()} == {
        "measured": 2.5, "live": 12.0, "resumed": None}


def test_a_journal_written_before_wall_times_loads_and_says_which_clock_it_has(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    old = report("0ld5a4d6b0c1", elapsed_s=9.0)
    with closing(sqlite3.connect(path)) as raw:
        raw.executescript(OLD_SCHEMA)
        raw.execute("INSERT INTO runs VALUES (?, ?, 'done', ?, ?)", (
            old.run_id, (NOW + timedelta(hours=3)).isoformat(), old.request.model_dump_json(),
            old.model_dump_json(exclude={"wall_s"})))  # exactly what the old code wrote
        raw.commit()

    async def read() -> tuple[Any, Any]:
        async with SqliteJournal(path) as journal:
            (summary,) = await journal.runs()
            state = await journal.run(old.run_id)
            await journal.record_run("new-run", old.request, NOW)  # the migrated journal takes new runs
            assert [r.run_id for r in await journal.runs()] == ["new-run", old.run_id]
        return summary, state

    summary, state = asyncio.run(read())
    assert summary.created_on == "run clock" and summary.created_at == NOW + timedelta(hours=3)
    assert summary.wall_s is None and summary.records == 0 and summary.records_final
    assert state is not None and state.report == old and state.wall_s is None and state.created_at is None
    with closing(sqlite3.connect(path)) as raw:
        columns = {row[1] for row in raw.execute("PRAGMA table_info(runs)")}
    assert {"created_wall", "finished_wall", "wall_s"} <= columns

    shown = deepsearch(tmp_path, "show", old.run_id[:6])
    assert shown.exit_code == 0, shown.output
    assert "wall time not recorded (9.0 virtual s on the sandbox clock)" in flat(shown.output)
    listed = deepsearch(tmp_path, "runs")
    assert listed.exit_code == 0, listed.output
    assert "* recorded before the journal kept wall-clock times" in flat(listed.output)


def test_runs_and_show_of_a_sandbox_run_use_the_wall_clock_and_merged_records(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    searched = deepsearch(tmp_path, "search", "CTO in New York", "--max-results", "10", "--json", "--no-progress")
    after = datetime.now(UTC)
    assert searched.exit_code == 0, searched.output
    result = orjson.loads(searched.stdout)
    run_id, merged = result["run_id"], len(result["records"])
    assert result["sandbox"] is True

    listed = deepsearch(tmp_path, "runs", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = orjson.loads(listed.stdout)
    created = datetime.fromisoformat(row["created_at"])
    # the sandbox clock ran 500x faster: its time was minutes ahead of now by the time the run started
    assert before - timedelta(seconds=2) <= created <= after + timedelta(seconds=2), (before, created, after)
    assert (row["records"], row["records_final"]) == (merged, True)  # the report's merged records ...
    assert row["hits"] > row["records"]  # ... not the sum of provider hits
    assert row["sandbox"] is True and row["virtual_s"] == result["elapsed_s"]
    assert 0 < row["wall_s"] <= (after - before).total_seconds() < result["elapsed_s"]

    table = deepsearch(tmp_path, "runs")
    assert table.exit_code == 0, table.output
    (line,) = [line for line in table.output.splitlines() if line.startswith(run_id[:8])]
    local = created.astimezone()
    assert local.strftime("%Y-%m-%d") in line and line.rstrip().endswith(f" {merged}"), table.output
    assert "local wall-clock time" in flat(table.output)

    shown = deepsearch(tmp_path, "show", run_id)
    assert shown.exit_code == 0, shown.output
    match = re.search(r"([\d.]+) s wall time \(([\d.]+) virtual s on the sandbox clock\)", flat(shown.output))
    assert match, shown.output[-400:]
    assert float(match.group(1)) == pytest.approx(row["wall_s"], abs=0.06)
    assert float(match.group(2)) == pytest.approx(result["elapsed_s"], abs=0.06)


# -- item 9: run ids by unique prefix ----------------------------------------------------------------

RUN_IDS = ("abcd1111aaaa", "abcd2222bbbb", "abce3333cccc", "new")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_run_ids_resolve_by_unique_prefix(kind: str, tmp_path: Path) -> None:
    async with store_of(kind, tmp_path, lambda: NOW) as store:
        for run_id in RUN_IDS:
            await store.record_run(run_id, SearchRequest(query="x"), NOW)
        assert await store.resolve_run_id("abcd1") == "abcd1111aaaa"
        assert await store.resolve_run_id("abce") == "abce3333cccc"
        assert await store.resolve_run_id("abcd2222bbbb") == "abcd2222bbbb"
        assert await store.resolve_run_id("new") == "new"  # a whole id, however short
        with pytest.raises(RunIdError) as ambiguous:
            await store.resolve_run_id("abcd")
        assert ambiguous.value.candidates == ("abcd1111aaaa", "abcd2222bbbb")
        with pytest.raises(RunIdError, match="too short"):
            await store.resolve_run_id("abc")
        for missing in ("zzzz", "", "abcd1111aaaaX"):
            with pytest.raises(RunIdError, match="no run") as unknown:
                await store.resolve_run_id(missing)
            assert unknown.value.candidates == ()
        shorts = {summary.run_id: summary.short_id for summary in await store.runs()}
    assert shorts == {"abcd1111aaaa": "abcd1111", "abcd2222bbbb": "abcd2222", "abce3333cccc": "abce3333",
                      "new": "new"}


def test_short_ids_grow_until_unique() -> None:
    ids = ["0123456789ab", "0123456789ac", "0123456700zz", "ffff"]
    ordered = sorted(ids)

    def neighbours(run_id: str) -> list[str]:
        i = ordered.index(run_id)
        return ordered[max(0, i - 1):i] + ordered[i + 1:i + 2]

    assert short_run_ids(ids, neighbours) == {"0123456789ab": "0123456789ab", "0123456789ac": "0123456789ac",
                                              "0123456700zz": "012345670", "ffff": "ffff"}


def test_show_and_resume_take_a_unique_prefix_and_list_the_candidates_of_an_ambiguous_one(tmp_path: Path) -> None:
    async def record() -> None:
        async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
            for run_id in RUN_IDS[:3]:
                await journal.record_run(run_id, SearchRequest(query="x"), NOW)
                await journal.finish_run(run_id, "done", report(run_id))

    asyncio.run(record())

    shown = deepsearch(tmp_path, "show", "abcd2", "--json")
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["run_id"] == "abcd2222bbbb"
    for command in ("show", "resume"):
        ambiguous = deepsearch(tmp_path, command, "abcd")
        assert ambiguous.exit_code == 2, ambiguous.output
        text = flat(ambiguous.output)
        assert "run_id: run id prefix 'abcd' is ambiguous" in text, text
        assert "abcd1111aaaa" in text and "abcd2222bbbb" in text and "abce3333cccc" not in text
        unknown = deepsearch(tmp_path, command, "zzzz")
        assert unknown.exit_code == 2 and "`deepsearch runs` lists them" in flat(unknown.output)


def test_the_ids_runs_shows_at_80_columns_are_accepted_by_show(tmp_path: Path) -> None:
    async def record() -> None:
        async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
            for n, run_id in enumerate(("5ca912334a1f4a5e9d6c0b7e8f9a0b1c", "5ca91233ffff4a5e9d6c0b7e8f9a0b1c",
                                        "1532ce28e62c4d6fb9ae31cd60911be7")):
                request = SearchRequest(query=f"VP of Engineering at Series B SaaS startups in New York {n}")
                await journal.record_run(run_id, request, NOW)
                await journal.finish_run(run_id, "done", report(run_id, request=request))

    asyncio.run(record())
    listed = deepsearch(tmp_path, "runs", columns=80)
    assert listed.exit_code == 0, listed.output
    assert max(map(len, listed.output.splitlines())) <= 80 and "…" not in listed.output, listed.output
    shown_ids = [line.split()[0] for line in listed.output.splitlines()
                 if re.match(r"^[0-9a-f]{8,} ", line)]
    assert sorted(shown_ids) == ["1532ce28", "5ca912334", "5ca91233f"], listed.output
    for short in shown_ids:
        shown = deepsearch(tmp_path, "show", short, "--json")
        assert shown.exit_code == 0, shown.output
        assert orjson.loads(shown.stdout)["run_id"].startswith(short)


# -- item 9: tables at 80 columns -----------------------------------------------------------------------

def person_hit(provider: str, n: int) -> Hit:
    return Hit(provider=provider, provider_record_id=f"{provider}-{n}", rank=n + 1, retrieved_at=NOW,
               entity=Person(full_name=f"Maximiliane Oppenheimer-Vandenberghe {n}",
                             title="Vice President of Engineering and Platform Infrastructure",
                             company_name="Kestrelshore Logistics Software",
                             location="New York, New York, United States",
                             linkedin_url=f"https://www.linkedin.com/in/maximiliane-oppenheimer-vandenberghe-2045{n}"))


def company_hit(provider: str, n: int) -> Hit:
    evidence = (Evidence(kind="criterion", key="freight_forwarding_focus", grade=5,
                         text="Strong fit: lists freight forwarding among its focus areas"),
                Evidence(kind="criterion", key="vertical_saas", grade=4, text="Sells software to one industry"))
    return Hit(provider=provider, provider_record_id=f"{provider}-{n}", rank=n + 1, retrieved_at=NOW,
               evidence=evidence if provider == "extruct" else (),
               entity=Company(name=f"Kestrelshore Freight Platforms {n}", domain=f"kestrelshore-freight-{n}.com",
                              industry="Logistics Software", employee_count=663 + n, hq_city="New York",
                              hq_country_iso2="US", funding_stage="Series D"))


OUTCOMES = (
    ProviderOutcome(provider="sixtyfour", status="found", sandbox=True, records=6, pages=2, credits=0.0,
                    elapsed_s=70.6),
    ProviderOutcome(provider="extruct", status="skipped", sandbox=True,
                    note="people mode not supported (extruct supports company mode only)"),
    ProviderOutcome(provider="orbit", status="no_result", sandbox=True, records=12, pages=29, credits=1039.5,
                    retries=12, elapsed_s=1105.2),
)


def people_report(*, sandbox: bool = True) -> SearchReport:
    hits = [person_hit(p, n) for p in ("sixtyfour", "orbit") for n in range(3)]
    return report(sandbox=sandbox, records=merge_hits(hits, "people"), outcomes=OUTCOMES)


def company_report() -> SearchReport:
    hits = [company_hit(p, n) for p in ("sixtyfour", "extruct") for n in range(3)]
    return report(records=merge_hits(hits, "company"), outcomes=OUTCOMES,
                  request=SearchRequest(query="vertical SaaS for freight forwarding", mode="company"))


def assert_readable_at_80(text: str) -> None:
    assert max(map(len, text.splitlines())) <= 80, text
    assert "…" not in text, text  # nothing cut to an ellipsis


def test_the_providers_table_at_80_columns_keeps_every_column_and_says_why_a_provider_was_skipped() -> None:
    text = render(outcomes_table(people_report()))
    assert_readable_at_80(text)
    for header in ("Provider", "Where", "Status", "Recs", "Pages", "Credits", "Retries"):
        assert header in text, text
    assert "virtual s" in text and "Times in virtual seconds (sandbox clock)" in flat(text)
    assert "extruct: skipped — people mode not supported (extruct supports company mode only)" in flat(text)
    orbit = next(line for line in text.splitlines() if line.startswith("orbit"))
    assert re.search(r"no_result +3 \(12( hits\))? +29 +1039\.5 +12 +1105\.2$", orbit.rstrip()), text
    # and wide enough for the Note column, the full table with its notes
    wide = render(outcomes_table(people_report()), width=200)
    assert "┃ Note" in wide and "people mode not supported" in wide


def test_the_providers_tables_time_column_names_its_clock() -> None:
    assert "virtual s" in render(outcomes_table(people_report()), width=200)
    live = render(outcomes_table(people_report(sandbox=False)), width=200)
    assert "wall s" in live and "virtual" not in live
    narrow_live = render(outcomes_table(people_report(sandbox=False)))
    assert "wall s" in narrow_live and "Times in wall-clock seconds" in flat(narrow_live)


def test_the_providers_table_stays_whole_even_at_40_columns() -> None:
    text = render(outcomes_table(people_report()), width=40)
    assert max(map(len, text.splitlines())) <= 40 and "…" not in text, text
    assert "1105.2 virtual s" in flat(text) and "people mode not supported" in flat(text)


@pytest.mark.parametrize("which", ["people", "company"])
def test_the_records_table_at_80_columns_shows_every_field_whole(which: str) -> None:
    rep = people_report() if which == "people" else company_report()
    text = render(records_table(rep))
    assert_readable_at_80(text)
    flattened = flat(text)
    assert len(rep.records) == 3
    for record in rep.records:
        entity = record.entity
        if isinstance(entity, Person):
            expected = [entity.full_name, entity.title, entity.company_name, entity.location,
                        (entity.linkedin_url or "").split("linkedin.com/")[-1]]
        else:
            assert isinstance(entity, Company)
            expected = [entity.name, entity.domain, entity.industry, f"{entity.employee_count} employees",
                        "New York, US", entity.funding_stage, "freight_forwarding_focus 5 · vertical_saas 4",
                        "Strong fit: lists freight forwarding among its focus areas"]
        for value in [*expected, ", ".join(record.providers)]:
            assert value and value in flattened, (value, text)
    wide = render(records_table(rep), width=250)  # a wide terminal still gets the table with headers
    assert "┃ Name" in wide and "Providers" in wide


def test_the_runs_table_at_80_columns() -> None:
    from aggregator.jobstore import RunSummary

    runs = [RunSummary(run_id="5ca912334a1f4a5e9d6c0b7e8f9a0b1c", created_at=NOW, status="interrupted",
                       query="VP of Engineering at Series B SaaS startups in New York", mode="company",
                       providers=["extruct", "orbit", "sixtyfour"], records=12, records_final=False, hits=30,
                       short_id="5ca91233"),
            RunSummary(run_id="1532ce28e62c4d6fb9ae31cd60911be7", created_at=NOW, status="done", query="CTO",
                       mode="people", providers=["orbit"], records=99, records_final=True, hits=136,
                       short_id="1532ce28")]
    text = render(runs_table(runs, title="Runs"))
    assert_readable_at_80(text)
    lines = text.splitlines()
    first = next(line for line in lines if line.startswith("5ca91233 "))
    assert "interrupted" in first and "company" in first and "12 so far" in flat(text), text
    second = next(line for line in lines if line.startswith("1532ce28 "))
    assert second.rstrip().endswith(" 99") and "136" not in text, text
    assert NOW.astimezone().strftime("%H:%M:%S") in text


def test_the_live_progress_line_labels_sandbox_seconds_virtual() -> None:
    from rich.console import Console

    from aggregator.cli._support import ProgressView
    from aggregator.events import ProgressEvent

    def line(sandbox: bool) -> str:
        view = ProgressView(live=True, sandbox=sandbox)
        view.update(ProgressEvent("orbit", "running", None, 3, 42.0))
        console = Console(width=120, record=True)
        console.print(view)
        return console.export_text()

    assert "42 virtual s" in line(sandbox=True)
    assert "42s" in line(sandbox=False) and "virtual" not in line(sandbox=False)
