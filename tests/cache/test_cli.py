"""``deepsearch search`` and the result cache: a repeated search on a standalone sandbox is answered from the
journal (it says ``cached``, the sandbox starts no job), and the cache flags that cannot apply are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from aggregator.cli import main
from providers.sandbox.runner import SandboxConnection
from tests.standalone import serve_sandbox

ROOT = Path(__file__).resolve().parents[2]
DEMO = "VP of Engineering at Series B SaaS startups in New York"
UNSET = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
         "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG", "DEEPSEARCH_DATABASE_URL")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    config = tmp_path / "small.toml"
    config.write_text("[sandbox]\nn_companies = 200\n")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return env | {"DEEPSEARCH_CONFIG": str(config), "DEEPSEARCH_JOURNAL": str(tmp_path / "journal.sqlite"),
                  "COLUMNS": "200", **extra}


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``deepsearch sandbox serve`` (50x real time); the environment of a client attached to it."""
    connection = tmp_path / "sb.json"
    with serve_sandbox(connection, _env(tmp_path)):
        yield _env(tmp_path, DEEPSEARCH_SANDBOX=str(connection))


def jobs_started(env: dict[str, str]) -> int:
    """``GET /_sandbox/stats`` of the standalone sandbox's Sixtyfour: jobs it started so far."""
    url = SandboxConnection.read(Path(env["DEEPSEARCH_SANDBOX"])).base_urls["sixtyfour"]
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as response:
        return int(json.load(response)["jobs_started"])


def deepsearch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aggregator", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)


@pytest.mark.timeout(300)
def test_a_repeated_search_is_answered_from_the_cache(standalone: dict[str, str]) -> None:
    search = ("search", DEMO, "--provider", "sixtyfour", "--max-results", "10", "--no-progress")
    first = deepsearch(standalone, *search, "--json")
    assert first.returncode == 0, first.stderr
    ran = orjson.loads(first.stdout)
    assert ran["cached"] is None and jobs_started(standalone) == 1

    again = deepsearch(standalone, *search)  # the human output says so
    assert again.returncode == 0, again.stderr
    assert f"cached: answered from run {ran['run_id'][:8]}, " in again.stdout
    assert "0 credits, no provider called" in " ".join(again.stdout.split())
    assert jobs_started(standalone) == 1  # the sandbox started no new job

    as_json = orjson.loads(deepsearch(standalone, *search, "--json").stdout)
    assert as_json["cached"]["run_id"] == ran["run_id"] and as_json["cached"]["age_s"] >= 0
    assert as_json["records"] == ran["records"]
    assert all(o["credits"] == 0 for o in as_json["outcomes"])

    bypassed = orjson.loads(deepsearch(standalone, *search, "--no-cache", "--json").stdout)
    assert bypassed["cached"] is None and jobs_started(standalone) == 2
    refreshed = orjson.loads(deepsearch(standalone, *search, "--refresh", "--json").stdout)
    assert refreshed["cached"] is None and jobs_started(standalone) == 3
    short = orjson.loads(deepsearch(standalone, *search, "--cache-ttl", "3600", "--json").stdout)
    assert short["cached"]["run_id"] == refreshed["run_id"] and jobs_started(standalone) == 3


@pytest.mark.parametrize(("args", "flag"), [
    (["search", "x", "--no-cache", "--refresh"], "--refresh"),
    (["search", "x", "--no-cache", "--cache-ttl", "60"], "--cache-ttl"),
    (["search", "x", "--explain", "--no-cache"], "--no-cache"),
    (["search", "x", "--explain", "--refresh"], "--refresh"),
    (["search", "x", "--explain", "--cache-ttl", "60"], "--cache-ttl"),
    (["search", "x", "--cache-ttl", "0"], "--cache-ttl"),
    (["lookup", "--email", "a@b.co", "--no-cache", "--refresh"], "--refresh"),
    (["filter", "--fields", "--no-cache"], "--no-cache"),
])
def test_cache_flags_that_cannot_apply_are_refused(args: list[str], flag: str, tmp_path: Path) -> None:
    env: dict[str, str | None] = {name: None for name in UNSET}
    env |= {"DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite"), "COLUMNS": "200"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert flag in result.output
    assert not (tmp_path / "j.sqlite").exists()  # nothing ran, nothing was recorded
