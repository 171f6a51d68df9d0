"""Issue 14, items 3, 4, 5 and 7: what the user asked for is either done or refused before anything is paid
for, and every message is true.

- item 3: an option that cannot apply to the run is refused (the table cases are in ``test_bad_input.py``;
  here: the mechanism's own table, what still passes, and repeatable options against the README);
- item 4: a search that ends with no record says ``no results`` plainly (exit 0 when providers answered,
  3 when none did);
- item 5: ``--out`` / ``--report`` folders are created before the run, and a write that still fails after
  it exits 1 naming the ``deepsearch show RUN_ID --out`` command, which then works;
- item 7: Ctrl-C prints the resume command only where resume works (a standalone sandbox), and on the
  in-process sandbox says what to do instead.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from aggregator.cli import COMMANDS, main
from aggregator.cli._support import Interrupted, report_interrupted
from aggregator.errors import ConfigError
from aggregator.models import SearchRequest
from aggregator.pipelines import APPLIES_TO, Policy, refuse_ignored_strategy_fields, refuse_inapplicable
from tests.standalone import serve_sandbox

ROOT = Path(__file__).resolve().parents[1]
FAST = "[sandbox]\ntime_scale = 0.002\nn_companies = 50\n"  # a run that gets as far as the sandbox starts fast
WORLD = "[sandbox]\ntime_scale = 0.002\n"  # the default world: the demo query finds people
DEMO = "VP of Engineering at Series B SaaS startups in New York"
UNSET = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
         "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG")




def invoke(args: list[str], tmp_path: Path, env: dict[str, str] | None = None, config: str = FAST) -> Result:
    """``deepsearch *args`` in-process on a fast in-process sandbox, journaled in ``tmp_path``."""
    (tmp_path / "fast.toml").write_text(config)
    base: dict[str, str | None] = {name: None for name in UNSET}
    base |= {"DEEPSEARCH_CONFIG": str(tmp_path / "fast.toml"), "DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite"),
             "COLUMNS": "200", **(env or {})}
    return CliRunner().invoke(main, args, env=base)


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- item 3: options that cannot apply ---------------------------------------------------------------
STRATEGIES = ("all", "fallback", "race")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("setting", sorted(APPLIES_TO))
def test_a_strategy_setting_is_refused_exactly_where_its_strategy_ignores_it(setting: str, strategy: Any) -> None:
    if strategy in APPLIES_TO[setting]:
        refuse_inapplicable(strategy, {setting})
        Policy.model_validate({"strategy": strategy, setting: _value(setting)}).check()
        return
    with pytest.raises(ConfigError) as info:
        refuse_inapplicable(strategy, {setting})
    assert info.value.field == setting and f"not to {strategy!r}" in info.value.problem
    with pytest.raises(ConfigError) as nested:
        Policy(strategy="fallback", steps=("orbit", Policy.model_validate(
            {"strategy": strategy, setting: _value(setting)}))).check()
    assert nested.value.field == f"policy.steps[1].{setting}"


def _value(setting: str) -> Any:
    return {"min_results": 3, "hedge_delay_s": 5.0, "advance_on": ["error"], "advance_on_errors": ["X"]}[setting]


def test_what_applies_still_passes() -> None:
    Policy(strategy="fallback", min_results=40, steps=(
        "orbit", Policy(strategy="race", steps=("sixtyfour", "extruct"), hedge_delay_s=20))).check()
    Policy(strategy="all", step_deadline_s=10).check()  # a step deadline applies to every strategy
    refuse_ignored_strategy_fields(SearchRequest(query="x", strategy="race", min_results=2, hedge_delay_s=1), None)
    refuse_ignored_strategy_fields(SearchRequest(query="x"), Policy(strategy="fallback"))


@pytest.mark.parametrize("args", [
    ["search", "x", "--strategy", "race", "--hedge-delay", "5", "--min-results", "2", "--explain"],
    ["search", "x", "--strategy", "fallback", "--min-results", "2", "--budget", "5", "--explain"],
    ["search", "x", "--policy", "{tmp}/p.json", "--deadline", "60", "--explain"],
    ["filter", "--values", "hq_country_iso2", "--top-k", "3", "--where", '{"hq_country_iso2": "US"}', "--json"],
], ids=["race-settings", "fallback-settings", "policy", "values-scope"])
def test_options_that_apply_are_accepted(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"strategy": "fallback", "min_results": 2, "steps": '
                                     '["orbit", {"strategy": "race", "steps": ["sixtyfour"], "hedge_delay_s": 3}]}')
    result = invoke([a.replace("{tmp}", str(tmp_path)) for a in args], tmp_path)
    assert result.exit_code == 0, result.output


def _documented_repeatable() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    flags = set(re.findall(r"`(--[a-z-]+)[^`]*`\s*\((?:[^()]*;\s*)?repeatable", readme))
    for group in re.findall(r"\(((?:`--[a-z-]+`,\s*)+)each\s+repeatable\)", readme):
        flags |= set(re.findall(r"`(--[a-z-]+)`", group))
    return flags


def test_every_repeatable_option_is_repeatable_in_every_command_that_has_it() -> None:
    documented = _documented_repeatable()
    assert {"--provider", "--exclude", "--title", "--company", "--location", "--school"} <= documented
    seen: set[str] = set()
    with click.Context(main) as ctx:
        for name in sorted(set(COMMANDS) - {"bench", "soak", "sandbox"}):
            command = main.get_command(ctx, name)
            assert command is not None
            for param in command.params:
                if not isinstance(param, click.Option):
                    continue
                said = "repeatable" in (param.help or "")
                flags = documented & set(param.opts)
                seen |= flags
                assert param.multiple or not (flags or said), f"{name} {param.opts[0]} is documented as repeatable"
    assert seen == documented  # every flag the README calls repeatable exists


# -- item 4: no results ------------------------------------------------------------------------------
def test_a_search_that_finds_nothing_says_no_results_and_exits_0(tmp_path: Path) -> None:
    result = invoke(["search", "x", "--json", "--no-progress"], tmp_path)

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["records"] == []  # stdout stays the data
    assert "no results: the search ran (sixtyfour, orbit answered) and returned no record" in one_line(result.stderr)

    table = invoke(["search", "x", "--no-progress"], tmp_path)
    assert table.exit_code == 0 and "no results:" in table.stderr, table.output
    found = invoke(["search", DEMO, "--max-results", "3", "--no-progress"], tmp_path, config=WORLD)
    assert found.exit_code == 0 and "no results" not in found.output, found.output


def test_a_search_where_every_provider_failed_says_no_results_and_exits_3(tmp_path: Path) -> None:
    env = {"SIXTYFOUR_API_KEY": "k", "SIXTYFOUR_BASE_URL": "http://127.0.0.1:9"}  # nothing listens there
    result = invoke(["search", "x", "--live", "--provider", "sixtyfour", "--no-progress"], tmp_path, env,
                    config="[retry]\nmax_attempts = 1\n")

    assert result.exit_code == 3, result.output
    assert "no results: every provider failed or was skipped" in one_line(result.stderr)


# -- item 5: output paths ----------------------------------------------------------------------------
def test_out_into_a_missing_folder_is_created_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "people.csv"
    result = invoke(["search", DEMO, "--max-results", "3", "--no-progress", "--out", str(out)], tmp_path,
                    config=WORLD)

    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 4  # a header and 3 records


def test_a_refused_run_creates_no_folder(tmp_path: Path, provider_calls: list[str]) -> None:
    result = invoke(["search", "x", "--provider", "nosuch", "--out", str(tmp_path / "new" / "r.csv")], tmp_path)

    assert result.exit_code == 2 and "unknown provider" in result.output, result.output
    assert not (tmp_path / "new").exists() and provider_calls == []


def test_compare_report_and_out_into_missing_folders(tmp_path: Path) -> None:
    report, out = tmp_path / "html" / "compare.html", tmp_path / "data" / "compare.jsonl"
    result = invoke(["compare", DEMO, "--max-results", "3", "--no-progress", "--report", str(report),
                     "--out", str(out)], tmp_path, config=WORLD)

    assert result.exit_code == 0, result.output
    assert report.read_text().startswith("<!DOCTYPE html>") and out.read_text().count("\n") >= 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_out_into_a_read_only_folder_is_refused_before_any_call(tmp_path: Path, provider_calls: list[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke(["search", "x", "--out", str(locked / "r.csv")], tmp_path)
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2 and "--out: cannot write" in one_line(result.output), result.output
    assert provider_calls == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (every write fails: disk full)")
def test_a_write_that_fails_after_the_run_keeps_it_and_names_the_show_command(
        tmp_path: Path, provider_calls: list[str]) -> None:
    out = tmp_path / "people.csv"
    out.symlink_to("/dev/full")  # opens fine, checks fine; the write itself fails (ENOSPC)
    journal = tmp_path / "mine.sqlite"
    result = invoke(["search", DEMO, "--max-results", "3", "--json", "--no-progress", "--journal", str(journal),
                     "--out", str(out)], tmp_path, config=WORLD)

    assert result.exit_code == 1, result.output
    assert provider_calls  # the run ran (and was paid for) before the write failed
    run_id = orjson.loads(result.stdout)["run_id"]
    message = one_line(result.stderr)
    assert "Traceback" not in result.output and "No space left on device" in message, message
    command = f"deepsearch show {run_id} --journal {journal} --out {out}"
    assert command in message, message

    out.unlink()  # the problem fixed: the printed command writes the records, no provider called
    calls = len(provider_calls)
    shown = invoke(command.split()[1:], tmp_path)
    assert shown.exit_code == 0, shown.output
    assert len(out.read_text().splitlines()) == 4 and len(provider_calls) == calls


# -- item 7: Ctrl-C ----------------------------------------------------------------------------------
def test_the_interrupted_message_names_resume_only_when_it_can_work(capsys: pytest.CaptureFixture[str]) -> None:
    for resumable in (True, False):
        with pytest.raises(SystemExit) as stop:
            report_interrupted(Interrupted("abc123", resumable=resumable))
        assert stop.value.code == 130
        said = one_line(capsys.readouterr().err)
        assert ("Resume with: deepsearch resume abc123" in said) is resumable, said
        assert ("cannot be resumed" in said and "deepsearch sandbox serve" in said) is not resumable, said


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return env | {"DEEPSEARCH_JOURNAL": str(tmp_path / "journal.sqlite"), "COLUMNS": "200", **extra}


def _interrupt(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Start ``deepsearch *args``, SIGINT it once its providers are at work; its exit code and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if ": running" in line or ": queued" in line:
                break
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(seen) + rest


def test_ctrl_c_on_the_in_process_sandbox_says_what_to_do_instead_of_resume(tmp_path: Path) -> None:
    config = tmp_path / "slow.toml"
    config.write_text("[sandbox]\ntime_scale = 0.02\nn_companies = 1000\n")  # a run takes seconds
    code, stderr = _interrupt(["compare", DEMO], _env(tmp_path, DEEPSEARCH_CONFIG=str(config)))

    assert code == 130, stderr
    assert "deepsearch resume" not in stderr and "Traceback" not in stderr, stderr
    said = one_line(stderr)
    assert re.search(r"run \w+ is in the journal as interrupted, but it cannot be resumed", said), said
    assert "Run the command again" in said and "deepsearch sandbox serve --connection-file" in said


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A standalone sandbox (``deepsearch sandbox serve``); the environment that attaches to it."""
    connection = tmp_path / "sb.json"
    env = _env(tmp_path, DEEPSEARCH_SANDBOX=str(connection))
    with serve_sandbox(connection, _env(tmp_path)):
        yield env


@pytest.mark.timeout(180)
def test_ctrl_c_on_a_standalone_sandbox_prints_the_resume_command_and_it_works(
        standalone: dict[str, str], tmp_path: Path) -> None:
    code, stderr = _interrupt(["search", DEMO, "--max-results", "10"], standalone)

    assert code == 130, stderr
    match = re.search(r"Resume with: deepsearch resume (\w+)", stderr)
    assert match, stderr
    resumed = subprocess.run([sys.executable, "-m", "aggregator", "resume", match.group(1), "--json",
                              "--no-progress"], capture_output=True, text=True, env=standalone, cwd=ROOT,
                             timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert orjson.loads(resumed.stdout)["run_id"] == match.group(1)
