"""``deepsearch`` as a user runs it (a subprocess), on a fast sandbox, with or without a database URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["deepsearch", "deepsearch_async"]

KEY_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY")


def _env(tmp_path: Path, database_url: str | None, config_toml: str) -> dict[str, str]:
    config = tmp_path / "fast.toml"
    config.write_text("[sandbox]\ntime_scale = 0.002\nn_companies = 1000\n" + config_toml)
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("DEEPSEARCH_")}
    env.update(DEEPSEARCH_CONFIG=str(config), DEEPSEARCH_JOURNAL=str(tmp_path / "journal.sqlite"), COLUMNS="200")
    if database_url is not None:
        env["DEEPSEARCH_DATABASE_URL"] = database_url
    return env


def deepsearch(*args: str, tmp_path: Path, database_url: str | None,
               config_toml: str = "") -> subprocess.CompletedProcess[str]:
    """``deepsearch *args`` with ``DEEPSEARCH_DATABASE_URL`` set to ``database_url`` (None: unset), a fast
    sandbox config (``config_toml`` appended) and a SQLite journal under ``tmp_path`` (used without a URL)."""
    return subprocess.run([sys.executable, "-m", "aggregator", *args], capture_output=True, text=True,
                          env=_env(tmp_path, database_url, config_toml), timeout=60, check=False)


def deepsearch_async(*args: str, tmp_path: Path, database_url: str | None) -> subprocess.Popen[str]:
    """:func:`deepsearch` started, not waited for (``communicate()`` it)."""
    return subprocess.Popen([sys.executable, "-m", "aggregator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp_path, database_url, ""))
