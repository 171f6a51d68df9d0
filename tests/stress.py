"""Run pytest on a machine whose cores are all busy, to shake out tests that lean on real-time slack.

    python -m tests.stress                      # the timing-sensitive tests, 3 runs, one spinner per core
    python -m tests.stress --runs 5 --spinners 4 -- tests/core -k deadline

Everything after ``--`` goes to pytest (default: :data:`TIMING_SENSITIVE`). ``--spinners`` busy-loop
processes (default: one per core) compete with pytest for the CPU for the whole session, so a test that
only passes when the event loop is scheduled within a few milliseconds fails here instead of on a loaded
CI runner. Each run's result and wall time are printed, and the whole output of a failed run is kept
(``--log-dir``, default a fresh temporary directory); the exit status is 1 if any run failed.

Makefile: ``test-stress: $(STAMP)`` / ``$(BIN)/python -m tests.stress --runs 3``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

TIMING_SENSITIVE = (
    "tests/core",
    "tests/test_resume_on_sandbox.py",
    "tests/test_kill_resume_cli.py",
    "tests/sixtyfour/test_search_on_sandbox.py",
    "tests/extruct/test_search_on_sandbox.py",
    "tests/orbit/test_search_on_sandbox.py",
    "tests/test_strategies_on_sandbox.py",
    "tests/guarantees",
    "tests/resume",
)
SPIN = "while True:\n    pass\n"
_SUMMARY = re.compile(r"=+ (.*\bin [\d.]+s.*) =+$|^(\d+ (?:passed|failed|error).*)$")


@dataclass
class RunResult:
    index: int
    returncode: int
    wall_s: float
    summary: str
    failures: list[str]
    output: str


def start_spinners(n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` processes that each keep one core busy until stopped."""
    return [subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL) for _ in range(n)]


def stop_spinners(spinners: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in spinners:
        proc.kill()
    for proc in spinners:
        proc.wait()


def run_pytest(index: int, pytest_args: Sequence[str]) -> RunResult:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfE", *pytest_args]  # -q: addopts
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.monotonic() - started
    lines = done.stdout.splitlines()
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    summary = next((line.strip("= ") for line in reversed(lines) if _SUMMARY.search(line)),
                   lines[-1] if lines else done.stderr.strip()[-300:])
    return RunResult(index, done.returncode, wall_s, summary, failures, done.stdout + done.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="pytest sessions to run one after another (3)")
    parser.add_argument("--spinners", type=int, default=os.cpu_count() or 2,
                        help="busy-loop processes competing for the CPU (default: one per core)")
    parser.add_argument("--log-dir", default=None, help="where failed runs' output is kept (default: a temp dir)")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = parser.parse_args(argv)
    pytest_args = args.pytest_args or list(TIMING_SENSITIVE)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="stress-")
    os.makedirs(log_dir, exist_ok=True)

    print(f"stress: {args.spinners} spinners, {args.runs} runs of pytest {' '.join(pytest_args)}", flush=True)
    spinners = start_spinners(args.spinners)
    results = []
    try:
        for index in range(1, args.runs + 1):
            result = run_pytest(index, pytest_args)
            results.append(result)
            verdict = "PASS" if result.returncode == 0 else f"FAIL (exit {result.returncode})"
            print(f"run {index}: {verdict} in {result.wall_s:.1f} s: {result.summary}", flush=True)
            for line in result.failures:
                print(f"    {line}", flush=True)
            if result.returncode != 0:
                log = os.path.join(log_dir, f"run-{index}.log")
                with open(log, "w") as handle:
                    handle.write(result.output)
                print(f"    output: {log}", flush=True)
    finally:
        stop_spinners(spinners)
    failed = [r.index for r in results if r.returncode != 0]
    print(f"stress: {len(results) - len(failed)}/{len(results)} runs passed"
          + (f" (failed: runs {', '.join(map(str, failed))})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
