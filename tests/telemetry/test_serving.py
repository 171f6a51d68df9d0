"""Issue 19, ``--metrics-port``: a real ``deepsearch mcp`` process over stdio serves its metrics over HTTP
(scraped and parsed with prometheus-client's parser) while stdout stays the MCP protocol; the option's
refusals (port range, host without port, the missing extra, a port in use) exit 2 for ``mcp`` and ``worker``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
FAST = "[sandbox]\ntime_scale = 0.002\nn_companies = 600\n[run]\ndeadline_s = 30000.0\n"
DEMO = "VP of Engineering at Series B SaaS startups in New York"
PROVIDER_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
                 "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG", "DEEPSEARCH_DATABASE_URL")
HINT = "pip install 'deepsearch-aggregator[metrics]'"


def environment(tmp_path: Path) -> dict[str, str]:
    """No provider key (so the in-process sandbox), a fast config, a journal in ``tmp_path``."""
    (tmp_path / "fast.toml").write_text(FAST)
    env = {name: value for name, value in os.environ.items() if name not in PROVIDER_VARS}
    return env | {"DEEPSEARCH_CONFIG": str(tmp_path / "fast.toml"), "DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite"),
                  "COLUMNS": "200"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_mcp_over_stdio_serves_its_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "aggregator", "mcp", "--metrics-port", str(port)],
                                   env=environment(tmp_path), cwd=str(ROOT))
    with (tmp_path / "server.err").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:  # stdout carries nothing but MCP
            before = await asyncio.to_thread(scrape, port)
            result = await client.call_tool("deep_search", {"query": DEMO, "max_results": 5})
            after = await asyncio.to_thread(scrape, port)

    assert not result.is_error and result.structured_content is not None
    credits = result.structured_content["credits"]
    assert not [key for key in before if key[0].startswith("deepsearch_runs")]  # no run yet
    assert after[("deepsearch_runs_total", (("status", "done"),))] == 1
    for provider in ("sixtyfour", "orbit"):
        requests = sum(v for (name, labels), v in after.items()
                       if name == "deepsearch_requests_total" and ("provider", provider) in labels)
        assert requests >= 3  # a submit, a poll, a page at least
        assert after[("deepsearch_job_duration_seconds_count", (("outcome", "found"), ("provider", provider)))] == 1
    spent = sum(v for (name, _), v in after.items() if name == "deepsearch_credits_spent_total")
    assert spent == credits > 0
    assert f"metrics at http://127.0.0.1:{port}/metrics" in (tmp_path / "server.err").read_text()


def run(args: list[str], tmp_path: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}from aggregator.cli import main; main({args!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env=environment(tmp_path) | {"DEEPSEARCH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})


@pytest.mark.parametrize("command", ["mcp", "worker"])
def test_a_metrics_port_out_of_range_or_a_host_without_port_exits_2(command: str, tmp_path: Path) -> None:
    for port in ("0", "65536", "http"):
        done = run([command, "--metrics-port", port], tmp_path)
        assert done.returncode == 2 and "--metrics-port" in done.stderr and done.stdout == "", (port, done.stderr)
    assert "1<=x<=65535" in done.stderr or "is not a valid integer" in done.stderr
    done = run([command, "--metrics-host", "0.0.0.0"], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "error: --metrics-host: applies only with --metrics-port N" in " ".join(done.stderr.split())


@pytest.mark.parametrize("command", ["mcp", "worker"])
def test_without_the_metrics_extra_the_metrics_port_exits_2_naming_the_pip_install(command: str,
                                                                                   tmp_path: Path) -> None:
    done = run([command, "--metrics-port", str(free_port())], tmp_path,
               prelude="import sys; sys.modules['prometheus_client'] = None; ")
    assert done.returncode == 2 and done.stdout == ""
    assert HINT in done.stderr and "error: --metrics-port:" in done.stderr


def test_a_metrics_port_in_use_exits_2_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(["mcp", "--metrics-port", str(port)], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert f"error: --metrics-port: cannot serve metrics on 127.0.0.1:{port}" in " ".join(done.stderr.split())
