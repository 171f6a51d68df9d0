"""Issue 14, item 12: counts in the right number, the lookup's Recs column, Ctrl-C during start-up, a
host name that does not resolve, and events that print as one short line."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver
from rich.console import Console

from aggregator.cli._support import ProgressView, print_report
from aggregator.config import load_settings
from aggregator.core import Aggregator
from aggregator.errors import BudgetExceededError
from aggregator.events import (
    Event,
    HitsEvent,
    OutcomeEvent,
    ProgressEvent,
    RecordsEvent,
    ReportEvent,
    RunStartedEvent,
)
from aggregator.models import PersonIdentity, SearchReport
from aggregator.render import counted, outcomes_table, records_table

ROOT = Path(__file__).resolve().parents[1]
KEY_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
            "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG")


def text_of(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


async def lookup_events(make_aggregator: Any) -> list[Event]:
    """Every event of a lookup of one person on Orbit's emulator (a partial, then a full profile)."""
    agg: Aggregator = await make_aggregator(providers=("orbit",), n_companies=300)
    world = agg.sandbox.world  # type: ignore[attr-defined]
    person = next(p for p in world.people if world.visible("orbit", p.true_id)
                  and world.visible("orbit", p.company_id))
    identity = PersonIdentity(linkedin_url=f"https://www.linkedin.com/in/{person.linkedin_slug}")
    return [event async for event in agg.stream("lookup", identity=identity, max_results=10,
                                                options={"orbit": {"run_shape": "partial_plus_full"}},
                                                providers=("orbit",))]


def report_of(events: list[Event]) -> SearchReport:
    (report,) = [e.report for e in events if isinstance(e, ReportEvent)]
    return report


# -- plurals ------------------------------------------------------------------------------------------

def test_counted_puts_the_noun_in_the_right_number() -> None:
    assert [counted(n, "record") for n in (0, 1, 2)] == ["0 records", "1 record", "2 records"]
    assert counted(1, "person", "people") == "1 person" and counted(3, "person", "people") == "3 people"
    assert counted(1.0, "credit") == "1 credit" and counted(11.0, "credit") == "11 credits"
    assert counted(0.5, "credit") == "0.5 credits"


def test_the_budget_error_says_1_credit() -> None:
    assert "needs 1 credit, 0 left" in str(BudgetExceededError(needed=1, remaining=0, provider="orbit"))
    assert "needs 10 credits, 3 left" in str(BudgetExceededError(needed=10, remaining=3))


async def test_a_lookup_of_one_person_reads_1_person_1_record_and_recs_1(
        make_aggregator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    report = report_of(await lookup_events(make_aggregator))
    outcome = report.outcome("orbit")
    assert len(report.records) == 1 and outcome.records == 2  # the JSON field still counts hits

    assert "1 person for" in text_of(records_table(report))
    (row,) = [line for line in text_of(outcomes_table(report)).splitlines() if line.startswith("│ orbit")]
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[:4] == ["orbit", "sandbox", "found", "1 (2 hits)"]  # one person; two profiles of them

    print_report(report, as_json=False, out=None, wall_s=1.0)
    out = " ".join(capsys.readouterr().out.split())  # the console wraps at its width
    assert re.search(rf"run {report.run_id}: 1 record, answered by orbit, \d+ credits, ", out), out[-300:]


def test_progress_off_a_terminal_says_1_result(capsys: pytest.CaptureFixture[str]) -> None:
    ProgressView(live=False).update(ProgressEvent("orbit", "fetching", results_so_far=1))
    assert "orbit: fetching (1 result)" in capsys.readouterr().err


# -- events -------------------------------------------------------------------------------------------

async def test_every_event_prints_as_one_short_line(make_aggregator: Any) -> None:
    events = await lookup_events(make_aggregator)
    for event in events:
        line = str(event)
        assert line == repr(event) and "\n" not in line and len(line) < 200, line[:300]
    report = report_of(events)
    assert str(events[-1]) == f"ReportEvent(run_id={report.run_id!r}, records=1, outcomes=orbit:found)"
    hits = next(e for e in events if isinstance(e, HitsEvent))
    assert str(hits) == f"HitsEvent(provider='orbit', hits={len(hits.hits)})"
    outcome = next(e for e in events if isinstance(e, OutcomeEvent))
    assert str(outcome) == "OutcomeEvent(provider='orbit', status='found', records=2)"


async def test_the_readme_stream_example_names_every_event_type_that_arrives(make_aggregator: Any) -> None:
    arrived = {type(e).__name__ for e in await lookup_events(make_aggregator)}
    assert arrived == {c.__name__ for c in (RunStartedEvent, ProgressEvent, HitsEvent, RecordsEvent, OutcomeEvent,
                                            ReportEvent)}
    readme = (ROOT / "README.md").read_text()
    example = readme[readme.index("async for event in agg.stream("):]
    example = example[:example.index("asyncio.run(main())")]
    assert {name for name in arrived if name in example} == arrived


# -- a host name that does not resolve ---------------------------------------------------------------

def live_settings(base_url: str, **retry: Any) -> Any:
    return load_settings(env={"SIXTYFOUR_API_KEY": "sk-test-not-a-key", "SIXTYFOUR_BASE_URL": base_url},
                         overrides={"retry": retry} if retry else None).with_target("live")


async def test_a_host_name_that_does_not_resolve_fails_at_once_without_retries() -> None:
    try:  # RFC 6761: .invalid never resolves; without a reachable resolver the lookup fails "temporarily"
        socket.getaddrinfo("nonexistent.invalid", 443)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            pytest.skip("no DNS resolver reachable here (EAI_AGAIN)")
    started = time.monotonic()
    async with Aggregator(live_settings("https://nonexistent.invalid")) as agg:
        report = await agg.search("CTO in Berlin", providers=("sixtyfour",))
    outcome = report.outcome("sixtyfour")
    assert outcome.status == "failed" and outcome.retries == 0  # default policy: up to 5 retries, ~15 s
    assert outcome.error is not None and outcome.error.type == "ProviderConnectionError"
    assert not outcome.error.retryable and "'nonexistent.invalid' does not resolve" in outcome.error.message
    assert time.monotonic() - started < 2


class FailingResolver(AbstractResolver):
    def __init__(self, errno: int) -> None:
        self.errno = errno

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> Any:
        raise socket.gaierror(self.errno, "resolver says no")

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(("errno", "retries"), [(socket.EAI_NONAME, 0), (socket.EAI_AGAIN, 1)],
                         ids=["unknown-name", "resolver-outage"])
async def test_only_a_temporary_dns_failure_is_retried(errno: int, retries: int) -> None:
    settings = live_settings("https://api.sixtyfour.example", max_attempts=2, backoff_initial_s=0.01,
                             backoff_max_s=0.01)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=FailingResolver(errno))) as session, \
            Aggregator(settings, session=session) as agg:
        report = await agg.search("CTO in Berlin", providers=("sixtyfour",))
    outcome = report.outcome("sixtyfour")
    assert outcome.status == "failed" and outcome.retries == retries
    assert outcome.error is not None and outcome.error.retryable == bool(retries)


# -- Ctrl-C during start-up ---------------------------------------------------------------------------

# Ctrl-C lands where start-up spends its time: importing the command's module (most of the ~1 s), reading
# the settings, or inside asyncio.run before the run takes SIGINT over. The wrapper blocks there after
# saying so on stderr, so the signal's timing is exact.
STALL = {
    "settings": ("import aggregator.cli._support as support\n"
                 "def stall(*args, **kwargs):\n"
                 "    print('stalled', file=sys.stderr, flush=True)\n"
                 "    time.sleep(60)\n"
                 "support.load_settings = stall\n"),
    "command import": ("import aggregator.cli, importlib\n"
                       "load = importlib.import_module\n"
                       "def stall(name, *args):\n"
                       "    if name.startswith('aggregator.cli._'):\n"
                       "        print('stalled', file=sys.stderr, flush=True)\n"
                       "        time.sleep(60)\n"
                       "    return load(name, *args)\n"
                       "aggregator.cli.importlib = type(importlib)('importlib')\n"
                       "aggregator.cli.importlib.import_module = stall\n"),
    "event loop": ("import asyncio\n"
                   "import aggregator.cli._support as support\n"
                   "async def stall(*args, **kwargs):\n"
                   "    print('stalled', file=sys.stderr, flush=True)\n"
                   "    await asyncio.sleep(60)\n"
                   "support.run_search = stall\n"),
}


@pytest.mark.parametrize("where", ["command import", "settings", "event loop"])
def test_ctrl_c_during_start_up_exits_130_with_one_line(where: str, tmp_path: Path) -> None:
    script = ("import sys, time\n" + STALL[where]
              + "from aggregator.cli import main\n"
                "main(['search', 'CTO in Berlin', '--sandbox', '--no-progress'])\n")
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["DEEPSEARCH_JOURNAL"] = str(tmp_path / "journal.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().strip() == "stalled"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err and "Aborted" not in err, err
    assert err.strip().splitlines() == ["interrupted before the run started"]
    assert proc.returncode == 130
