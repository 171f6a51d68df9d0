"""``deepsearch bench --quick``: every benchmark runs and reports sane numbers (not its targets).

The suite runs once for the module (about ten seconds: small sizes on a fast-scaled sandbox);
each test checks one benchmark's part of the JSON document. Performance targets are checked by
the full ``deepsearch bench`` run, never by timed tests.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from aggregator.bench.cli import bench
from aggregator.bench.ratelimit import sliding_window_rate, token_bucket_rate
from aggregator.bench.suite import BENCHMARKS, run_benchmarks


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    result = CliRunner().invoke(bench, ["--quick", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return orjson.loads(out.read_bytes()), result.output, out


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_the_quick_run_writes_every_benchmark_to_json_and_prints_a_table_each(
    quick_run: tuple[dict[str, Any], str, Path],
) -> None:
    doc, output, _ = quick_run
    assert doc["quick"] is True and list(doc["benchmarks"]) == list(BENCHMARKS)
    assert finite(doc["wall_s"]) and doc["machine"]["cores"] >= 1
    for name, result in doc["benchmarks"].items():
        assert result["name"] == name and result["title"] in output
        assert result["metrics"] and all({"name", "value", "unit", "target", "passed"} <= set(m)
                                         for m in result["metrics"])
        checked = [m["passed"] for m in result["metrics"] if m["target"]]
        assert result["passed"] == (all(checked) if checked else None)
    assert "results written to" in output


def test_overhead_both_sides_send_the_same_requests_and_get_the_same_records(
    quick_run: tuple[dict[str, Any], str, Path],
) -> None:
    overhead = quick_run[0]["benchmarks"]["overhead"]["details"]
    config = overhead["config"]
    pages = -(-config["max_results"] // config["page_size"])
    assert [level["concurrency"] for level in overhead["levels"]] == config["concurrency"]
    for level in overhead["levels"]:
        ours, hand = level["ours"], level["hand"]
        assert level["same_requests_and_records"]
        assert ours["requests_per_search"] == hand["requests_per_search"] == 1 + config["polls"] + pages
        assert ours["records_per_search"] == hand["records_per_search"] == config["max_results"]
        assert finite(level["wall_ratio"]) and level["wall_ratio"] > 0
        assert ours["cpu_s_per_search"] > 0 and hand["cpu_s_per_search"] > 0
        assert ours["peak_rss_mb"] >= ours["baseline_rss_mb"] > 0


def test_rate_limits_are_used_without_a_single_429(quick_run: tuple[dict[str, Any], str, Path]) -> None:
    details = quick_run[0]["benchmarks"]["ratelimit"]["details"]
    sixtyfour, orbit, config = details["sixtyfour"], details["orbit"], details["config"]
    assert sixtyfour["rate_limited_429"] == 0 and sixtyfour["client_retries"] == 0
    assert sixtyfour["records"] == config["rows"] and sixtyfour["requests"] == config["rows"] // config["page_size"]
    assert sixtyfour["windows_measured"] >= 2
    assert orbit["rate_limited_429"] == 0 and orbit["client_retries"] == 0
    assert orbit["requests"] == orbit["searches"] == config["orbit_starts"]
    # a limiter may run below its limit on a busy machine, never above it
    assert 0 < sixtyfour["utilization"] <= 1.01 and 0 < orbit["utilization"] <= 1.05


def test_fanout_runs_every_provider_of_both_modes(quick_run: tuple[dict[str, Any], str, Path]) -> None:
    modes = quick_run[0]["benchmarks"]["fanout"]["details"]["modes"]
    assert set(modes) == {"people", "company"}
    for doc in modes.values():
        assert finite(doc["ratio"]) and doc["ratio"] > 0 and doc["slowest"] in doc["providers"]
        assert all(o["status"] == "found" for o in doc["outcomes"]["all"].values())
        assert set(doc["outcomes"]["all"]) == set(doc["providers"])


def test_streaming_providers_deliver_before_they_complete(quick_run: tuple[dict[str, Any], str, Path]) -> None:
    providers = quick_run[0]["benchmarks"]["ttfr"]["details"]["providers"]
    for name in ("extruct", "orbit"):
        doc = providers[name]
        assert doc["status"] == "found" and doc["hits_events"] >= 1
        assert 0 < doc["first_record_virtual_s"] < doc["completion_virtual_s"]
    reference = providers["sixtyfour"]
    assert reference["hits_events"] >= 1 and reference["first_record_virtual_s"] <= reference["completion_virtual_s"]


def test_normalization_is_timed_for_every_provider(quick_run: tuple[dict[str, Any], str, Path]) -> None:
    providers = quick_run[0]["benchmarks"]["normalize"]["details"]["providers"]
    assert {"sixtyfour (people)", "sixtyfour (company)", "extruct", "orbit"} <= set(providers)
    for doc in providers.values():
        assert doc["records"] >= 1 and doc["payloads"] >= 1
        assert doc["orjson_records_per_s"] > doc["normalize_records_per_s"] > 0
        assert doc["slowdown"] > 1


def test_steady_state_rates_count_whole_windows_and_skip_the_burst() -> None:
    # 3 batches of 10 exactly one 60 s window apart: 10 per 60 s
    times = [60.0 * (i // 10) + 0.01 * (i % 10) for i in range(30)]
    rate, windows = sliding_window_rate(times, 10)
    assert windows == 2 and rate == pytest.approx(10 / 60)
    assert sliding_window_rate(times[:10], 10) == (None, 0)
    # a burst of 5 at once, then 2 per second
    bucket = [0.0] * 5 + [0.5 * i for i in range(1, 21)]
    assert token_bucket_rate(bucket, 5) == pytest.approx(2.0)
    assert token_bucket_rate(bucket[:11], 5) is None


def test_an_unknown_benchmark_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        run_benchmarks(["nope"], quick=True)
    result = CliRunner().invoke(bench, ["--only", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(bench, ["--concurrency", "1,x"])
    assert result.exit_code == 2 and "--concurrency" in result.output
