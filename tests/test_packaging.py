"""The package as users get it: a wheel installed (not editable) in a fresh venv, a light import, a fast CLI.

The wheel test builds the wheel from this checkout, installs it with its dependencies into a new
virtual environment (pip reaches the package index, as a user's would), and from an unrelated
directory runs the README's sandbox search and its library snippet. Everything else here runs in
fresh interpreters of the test's own environment.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import orjson
import pytest

from aggregator.bench.startup import HEAVY_PREFIXES, loaded_modules
from aggregator.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["aggregator", "aggregator.cli"])
def test_importing_the_package_or_its_cli_loads_no_provider_sandbox_faker_or_aiohttp(module: str) -> None:
    heavy = [m for m in loaded_modules(module) if m.startswith(HEAVY_PREFIXES)]
    assert heavy == []


def test_the_facade_imports_no_provider_or_sandbox_module() -> None:
    loaded = loaded_modules("aggregator; from aggregator import Aggregator, SearchRequest; Aggregator")
    assert [m for m in loaded if m.startswith(("providers", "faker", "aggregator.bench"))] == []
    assert "aggregator.core" in loaded  # the name really was resolved


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_lazily_registered_command_resolves_and_its_listed_help_is_its_own(name: str) -> None:
    target, listed_help = COMMANDS[name]
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert command.name == name
    assert listed_help == command.get_short_help_str(limit=500)


def test_the_version_comes_from_the_distribution_metadata() -> None:
    import aggregator

    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert declared is not None
    assert aggregator.__version__ == declared.group(1)


def test_config_default_toml_is_the_packaged_file_itself() -> None:
    """One source of truth: the checkout's config/default.toml is a link to the packaged defaults."""
    documented, packaged = ROOT / "config" / "default.toml", ROOT / "aggregator" / "default.toml"
    assert documented.is_symlink()
    assert documented.resolve() == packaged.resolve()


def _readme_library_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "README has no python snippet"
    return match.group(1)


@pytest.mark.timeout(600)
def test_the_wheel_installed_in_a_fresh_venv_runs_the_readme_search_and_snippet(tmp_path: Path) -> None:
    source, dist = tmp_path / "source", tmp_path / "dist"  # a copy: setuptools builds in-tree (build/)
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "mutants"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("deepsearch_aggregator-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python, deepsearch = env_dir / "bin" / "python", env_dir / "bin" / "deepsearch"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEEPSEARCH_", "PYTHON"))}
    env.update(HOME=str(tmp_path / "home"), DEEPSEARCH_JOURNAL=str(tmp_path / "journal.sqlite"))
    where = subprocess.run([str(python), "-c", "import aggregator; print(aggregator.__file__)"], cwd=elsewhere,
                           env=env, check=True, capture_output=True, text=True).stdout
    assert Path(where.strip()).is_relative_to(env_dir)  # the installed copy, not this checkout

    search = subprocess.run([str(deepsearch), "search", "CTO in Berlin", "--sandbox", "--json", "--no-progress"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert search.returncode == 0, search.stderr[-2000:]
    report = orjson.loads(search.stdout)
    assert report["records"] and {o["provider"] for o in report["outcomes"]} >= {"sixtyfour", "orbit"}

    snippet = subprocess.run([str(python), "-c", _readme_library_snippet()], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=300)
    assert snippet.returncode == 0, snippet.stderr[-2000:]
    assert "ReportEvent" in snippet.stdout
