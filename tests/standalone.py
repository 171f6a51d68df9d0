"""A standalone sandbox for CLI tests: ``deepsearch sandbox serve --connection-file`` in a child process."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["serve_sandbox"]

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def serve_sandbox(connection: Path, env: dict[str, str], *, log: Path | None = None,
                  time_scale: str = "0.02", start_timeout_s: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``deepsearch sandbox serve --time-scale TIME_SCALE --connection-file CONNECTION`` with ``env`` until
    the block ends (SIGINT, then kill after 20 s); the block starts once the connection file exists.
    ``log``: where its stderr goes (shown when it dies before it is ready); else nowhere."""
    with contextlib.ExitStack() as stack:
        stderr = stack.enter_context(log.open("w")) if log is not None else subprocess.DEVNULL
        server = subprocess.Popen([sys.executable, "-m", "aggregator", "sandbox", "serve", "--time-scale", time_scale,
                                   "--connection-file", str(connection)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not connection.exists():
            assert server.poll() is None, log.read_text() if log is not None else "the sandbox exited"
            assert time.monotonic() < deadline, f"the sandbox did not start within {start_timeout_s:g} s"
            time.sleep(0.05)
        yield server
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
