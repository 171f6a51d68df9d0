"""Batches on several processes: one standalone sandbox (a ``deepsearch sandbox serve`` subprocess, time
scale 0.02, a 300-company world) shared through its connection file, a fresh migrated PostgreSQL database
per test, and ``deepsearch`` commands (``batch``, ``worker``) run as subprocesses, as a user runs them.

The reference every test compares with is the same batch run in one process, without a database
(``deepsearch batch FILE --out ref.jsonl``, SQLite journal), on the same sandbox: run once per module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from tests.db.backends import migrated_database
from tests.postgres import Cluster
from tests.standalone import serve_sandbox

KEY_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
            "ORBIT_BASE_URL")
TITLES = ("VP of Engineering", "CTO", "VP of Sales", "CEO", "VP of Product", "Head of Marketing")
CITIES = ("New York", "London", "Berlin", "San Francisco")
ROWS = tuple({"query": f"{title} in {city}", "max_results": 100} for title in TITLES for city in CITIES)
"""24 people searches, each finding people at Sixtyfour and Orbit in the 300-company world (max_results above
what they find: the merged list is never cut, so records compare exactly)."""
STALE_AFTER_S = "3"  # real seconds: a SIGKILLed worker's rows are retried within about 4.5 s

Stats = dict[str, dict[str, Any]]
RecordKeys = list[tuple[str, tuple[tuple[str, str], ...]]]


@dataclass
class Standalone:
    """The running sandbox: its connection file, base URLs and the environment that attaches to it."""

    connection_file: Path
    base_urls: dict[str, str]
    env: dict[str, str]

    def stats(self) -> Stats:
        """Each provider's ``GET /_sandbox/stats`` document."""
        docs = {}
        for name, url in self.base_urls.items():
            with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as resp:
                docs[name] = orjson.loads(resp.read())
        return docs


def grew(before: Stats, after: Stats, counter: str) -> dict[str, float]:
    """How much a provider counter (``jobs_started``, ``rate_limited``...) grew between two snapshots."""
    return {name: float(after[name].get(counter) or 0) - float(before[name].get(counter) or 0) for name in after}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    tmp = tmp_path_factory.mktemp("workers")
    config = tmp / "client.toml"
    config.write_text("[sandbox]\nn_companies = 300\n\n[run]\ndeadline_s = 30000\n")
    connection = tmp / "sandbox.json"
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("DEEPSEARCH_")}
    env |= {"DEEPSEARCH_CONFIG": str(config), "DEEPSEARCH_SANDBOX": str(connection),
            "DEEPSEARCH_JOURNAL": str(tmp / "journal.sqlite"), "COLUMNS": "200"}
    with serve_sandbox(connection, env, log=tmp / "serve.log"):
        yield Standalone(connection, orjson.loads(connection.read_bytes())["base_urls"], env)


@pytest.fixture
def database(postgres: Cluster) -> str:
    """A fresh database holding the current schema (journal, coordination, batches, Procrastinate's queue)."""
    return migrated_database(postgres)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rows") / "people.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in ROWS))
    return path


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "aggregator", *map(str, args)]


def environment(sb: Standalone, database: str | None) -> dict[str, str]:
    return sb.env | ({"DEEPSEARCH_DATABASE_URL": database} if database else {})


def deepsearch(sb: Standalone, *args: str | Path, database: str | None,
               timeout_s: float = 110) -> subprocess.CompletedProcess[str]:
    """``deepsearch *args`` attached to the sandbox, with ``DEEPSEARCH_DATABASE_URL`` when ``database``."""
    return subprocess.run(command(*args), capture_output=True, text=True,
                          env=environment(sb, database), timeout=timeout_s, check=False)


def spawn(sb: Standalone, *args: str | Path, database: str | None, log: Path) -> subprocess.Popen[bytes]:
    """``deepsearch *args`` started, its stderr to ``log``."""
    with log.open("wb") as stderr:
        return subprocess.Popen(command(*args), env=environment(sb, database),
                                stdout=subprocess.DEVNULL, stderr=stderr)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (a worker's graceful stop), then wait; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def query(database: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on ``database``, read as another process would."""
    with psycopg.connect(database, autocommit=True) as conn:
        return [tuple(row) for row in conn.execute(sql.encode(), params).fetchall()]


def records_by_row(out: Path) -> dict[int, RecordKeys]:
    """Each row's merged records, with the provider records behind each, from a ``--out FILE.jsonl``."""
    def entity_key(hit: dict[str, Any]) -> str:
        entity = hit["entity"]
        return str(entity.get("linkedin_url") or entity.get("domain") or hit["provider_record_id"])

    found = {}
    for line in out.read_bytes().splitlines():
        row = orjson.loads(line)
        assert row["status"] == "done", row
        found[row["row"]] = sorted((r["record_id"], tuple(sorted((h["provider"], entity_key(h)) for h in r["hits"])))
                                   for r in row["results"])
    return found


@pytest.fixture(scope="module")
def reference(standalone: Standalone, rows_file: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[int, RecordKeys]:
    """The batch run in one process, without a database: each row's records."""
    out = tmp_path_factory.mktemp("reference") / "ref.jsonl"
    done = deepsearch(standalone, "batch", rows_file, "--concurrency", "8", "--out", out, "--no-progress",
                      database=None)
    assert done.returncode == 0, done.stderr
    found = records_by_row(out)
    assert len(found) == len(ROWS) and all(found.values()), "every reference row found people"
    return found
