"""Issue 14, item 11: ``deepsearch sandbox serve`` tells any client how to call it (base URL, sandbox key
and the variables to set), stops cleanly on SIGTERM/SIGHUP removing its connection file, and a client
attaching to a connection file whose sandbox is gone is told so (exit 2), not sent to dead ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from aggregator.config import SandboxSettings
from aggregator.errors import ConfigError
from aggregator.sandbox import open_sandbox
from providers.sandbox.disagreements import DisagreementRates
from providers.sandbox.runner import AttachedSandbox, Sandbox, SandboxConfig, SandboxConnection
from providers.sandbox.world import build_world

ROOT = Path(__file__).resolve().parents[1]
ENV_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
            "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG")
CLIENT_VARS = {"sixtyfour": ("SIXTYFOUR_BASE_URL", "SIXTYFOUR_API_KEY"),  # aggregator/default.toml
               "extruct": ("EXTRUCT_BASE_URL", "EXTRUCT_API_TOKEN"),
               "orbit": ("ORBIT_BASE_URL", "ORBIT_API_KEY")}


def clean_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "small.toml"
    config.write_text("[sandbox]\nn_companies = 200\n")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return env | {"DEEPSEARCH_CONFIG": str(config), "DEEPSEARCH_JOURNAL": str(tmp_path / "journal.sqlite"),
                  "COLUMNS": "300"}


@dataclass
class Served:
    proc: subprocess.Popen[str]
    stdout: list[str]
    stderr: list[str]


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """``deepsearch sandbox serve --connection-file sb.json`` (plus the flags an indirect parameter
    gives), read up to its "sandbox ready" line."""
    flags = list(getattr(request, "param", ()))
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "sandbox", "serve", "--connection-file",
                             str(tmp_path / "sb.json"), *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=clean_env(tmp_path), cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        stderr: list[str] = []
        while not stderr or not stderr[-1].startswith("sandbox ready"):
            line = proc.stderr.readline()
            assert line, f"serve ended before it was ready: {''.join(stderr)}"
            stderr.append(line)
        stdout = [proc.stdout.readline() for _ in CLIENT_VARS]
        yield Served(proc, stdout, stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop(served: Served, sig: signal.Signals) -> str:
    served.proc.send_signal(sig)
    _, rest = served.proc.communicate(timeout=30)
    return rest


def test_serve_prints_each_emulators_url_key_and_client_variables(served: Served, tmp_path: Path) -> None:
    connection = SandboxConnection.read(tmp_path / "sb.json")
    assert served.stdout == [f"{name}\t{url}\n" for name, url in connection.base_urls.items()]  # unchanged
    for name, (url_var, key_var) in CLIENT_VARS.items():
        url, key = connection.base_urls[name], connection.api_keys[name]
        assert f"  {url_var}={url} {key_var}={key}\n" in served.stderr
    # the printed key is what any HTTP client needs: the emulator takes it, and refuses another
    sixtyfour = connection.base_urls["sixtyfour"]
    printed = next(line for line in served.stderr if "SIXTYFOUR_API_KEY=" in line).split("SIXTYFOUR_API_KEY=")[1]
    capabilities = f"{sixtyfour}/search/filter-capabilities?mode=people"
    with urllib.request.urlopen(urllib.request.Request(capabilities, headers={"x-api-key": printed.strip()}),
                                timeout=10) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(capabilities, headers={"x-api-key": "sk-not-the-sandbox-key"}),
                               timeout=10)
    assert refused.value.code == 401
    refused.value.close()


def test_serve_runs_in_real_time_unless_told_otherwise(served: Served, tmp_path: Path) -> None:
    """Issue 15, item 1: a client that is not ours knows nothing of a virtual clock."""
    assert SandboxConnection.read(tmp_path / "sb.json").time_scale == 1.0
    assert served.stderr[-1].startswith("sandbox ready (time scale 1, real time)")
    faster = subprocess.run([sys.executable, "-m", "aggregator", "sandbox", "serve", "--help"], capture_output=True,
                            text=True, env=clean_env(tmp_path), cwd=ROOT, check=True)
    assert "default: 1.0" in faster.stdout and "--connection-file" in faster.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_serve_cleanly_and_removes_the_connection_file(
        served: Served, sig: signal.Signals, tmp_path: Path) -> None:
    assert (tmp_path / "sb.json").exists()
    rest = stop(served, sig)
    assert served.proc.returncode == 0, rest
    assert "Traceback" not in rest and f"sandbox stopped ({sig.name})" in rest
    assert not (tmp_path / "sb.json").exists()
    assert not (tmp_path / "sb.json.tmp").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def connection_file(path: Path, pid: int, port: int) -> Path:
    path.write_bytes(orjson.dumps({
        "base_urls": {"sixtyfour": f"http://127.0.0.1:{port}"}, "api_keys": {"sixtyfour": "sandbox-sixtyfour-key-1"},
        "time_scale": 0.02, "epoch": "2026-01-01T00:00:00+00:00", "pid": pid}))
    return path


@pytest.mark.parametrize(("pid", "why"), [(exited_pid, "has exited"), (os.getpid, "refuses connections")],
                         ids=["process-exited", "port-closed"])
async def test_attaching_to_a_sandbox_that_is_gone_is_a_config_error_naming_the_file(
        pid: Callable[[], int], why: str, tmp_path: Path) -> None:
    path = connection_file(tmp_path / "sb.json", pid(), free_port())
    started = time.monotonic()
    with pytest.raises(ConfigError) as gone:
        await open_sandbox(SandboxSettings(connection_file=path), ["sixtyfour"])
    message = str(gone.value)
    assert gone.value.field == "sandbox.connection_file"
    assert f"the sandbox of {path} is not running" in message and why in message
    assert f"deepsearch sandbox serve --connection-file {path}" in message
    assert time.monotonic() - started < 2


async def test_attaching_to_a_running_sandbox_still_works(tmp_path: Path) -> None:
    async with Sandbox(SandboxConfig(n_companies=200, providers=("sixtyfour",))) as sandbox:
        path = tmp_path / "sb.json"
        sandbox.connection().write(path)
        attached = await open_sandbox(SandboxSettings(connection_file=path), ["sixtyfour"])
        assert attached.base_urls == sandbox.base_urls and attached.in_process is False


def test_a_command_on_a_gone_sandbox_exits_2_saying_so(tmp_path: Path) -> None:
    path = connection_file(tmp_path / "sb.json", exited_pid(), free_port())
    env = clean_env(tmp_path) | {"DEEPSEARCH_SANDBOX": str(path)}
    result = subprocess.run([sys.executable, "-m", "aggregator", "search", "CTO in Berlin", "--no-progress"],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: sandbox.connection_file: the sandbox of {path} is not running" in result.stderr
    assert f"deepsearch sandbox serve --connection-file {path}" in result.stderr


@pytest.mark.parametrize("served", [("--world", "hard")], indirect=True)
async def test_a_hard_world_sandbox_records_its_world_and_an_attached_client_knows_it(
        served: Served, tmp_path: Path) -> None:
    """Issue 20 follow-up: the connection file says which world it serves, so a client scores against it."""
    path = tmp_path / "sb.json"
    doc = orjson.loads(path.read_bytes())
    assert doc["world"] == "hard" and "rates" not in doc  # the preset: no rates written out
    assert (doc["seed"], doc["n_companies"]) == (7, 200)  # tests' small.toml
    attached = await open_sandbox(SandboxSettings(connection_file=path, world="hard"), ["sixtyfour"])
    assert attached.world_name == "hard" and attached.in_process is False
    assert isinstance(attached, AttachedSandbox) and attached.disagreements == DisagreementRates.hard()
    world = attached.world  # the serving process's world, rebuilt here: ground truth for its hits
    assert world.disagreements.kinds and world == build_world(7, 200, DisagreementRates.hard())


async def test_a_default_world_sandbox_records_it_and_refuses_a_client_asking_for_the_hard_one(
        served: Served, tmp_path: Path) -> None:
    path = tmp_path / "sb.json"
    assert orjson.loads(path.read_bytes())["world"] == "default"
    attached = await open_sandbox(SandboxSettings(connection_file=path), ["sixtyfour"])
    assert attached.world_name == "default" and isinstance(attached, AttachedSandbox)
    assert attached.disagreements is None and not attached.world.disagreements.kinds
    with pytest.raises(ConfigError) as refused:
        await open_sandbox(SandboxSettings(connection_file=path, world="hard"), ["sixtyfour"])
    assert refused.value.field == "sandbox.world" and "serves the default world" in str(refused.value)
    assert f"deepsearch sandbox serve --world hard --connection-file {path}" in str(refused.value)


async def test_rates_other_than_the_preset_are_recorded_and_an_older_file_is_the_default_world(
        tmp_path: Path) -> None:
    rates = DisagreementRates(nickname=0.5, rebrand=0.2)
    config = SandboxConfig(n_companies=100, providers=("sixtyfour",), disagreements=rates)
    async with Sandbox(config) as sandbox:
        path = tmp_path / "sb.json"
        sandbox.connection().write(path)
        assert sandbox.world_name == "hard"
        read = SandboxConnection.read(path)
        assert (read.world, read.seed, read.n_companies) == ("hard", 7, 100)
        assert read.rates is not None and read.rates["nickname"] == 0.5 and read.disagreements() == rates
        attached = await open_sandbox(SandboxSettings(connection_file=path), ["sixtyfour"])
        assert isinstance(attached, AttachedSandbox) and attached.world == sandbox.world
    old = connection_file(tmp_path / "old.json", os.getpid(), free_port())  # written before the field existed
    assert SandboxConnection.read(old).world == "default" and SandboxConnection.read(old).disagreements() is None
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(orjson.loads(path.read_bytes()) | {"rates": {"nickname": 2}}))
    with pytest.raises(ValueError, match="nickname"):
        SandboxConnection.read(bad)
