"""Issue 19, ``deepsearch worker --metrics-port``: a real worker on a real PostgreSQL (and the standalone sandbox
of the worker tests) serves the metrics of the batch rows it runs, scraped over HTTP while it works."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workers.conftest import Standalone, database, deepsearch, spawn, standalone, stop  # noqa: F401

ROWS = ({"query": "VP of Engineering in New York", "max_results": 5}, {"query": "CTO in London", "max_results": 5})


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.mark.timeout(120)
def test_a_worker_serves_the_metrics_of_the_rows_it_runs(standalone: Standalone, database: str,  # noqa: F811
                                                         tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in ROWS))
    queued = deepsearch(standalone, "batch", rows, "--no-wait", database=database)
    assert queued.returncode == 0, queued.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    worker = spawn(standalone, "worker", "--metrics-port", str(port), "--concurrency", "2", database=database,
                   log=tmp_path / "worker.err")
    try:
        deadline = time.monotonic() + 90
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        while samples.get(("deepsearch_runs_total", (("status", "done"),)), 0) < len(ROWS):
            assert worker.poll() is None, (tmp_path / "worker.err").read_text()
            assert time.monotonic() < deadline, samples
            time.sleep(0.2)  # another process: nothing to wait on but its answers
            try:
                samples = scrape(port)
            except OSError:  # not listening yet
                continue
    finally:
        code = stop(worker)

    assert code == 0, (tmp_path / "worker.err").read_text()
    assert samples[("deepsearch_run_records_count", ())] == len(ROWS)
    for provider in ("sixtyfour", "orbit"):
        assert sum(v for (name, labels), v in samples.items()
                   if name == "deepsearch_requests_total" and ("provider", provider) in labels) >= 2 * 3
    assert f"metrics at http://127.0.0.1:{port}/metrics" in (tmp_path / "worker.err").read_text()
