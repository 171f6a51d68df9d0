"""Pytest plugin: every emulator response of every test is checked against the provider's published
schema (issue 15, item 6). Registered from the root ``tests/conftest.py`` (``pytest_plugins``).

An autouse fixture (:func:`conformance`) subscribes an observer to the sandbox
(:func:`providers.sandbox.server.observe_responses`) for the whole test, setup and teardown of its
other fixtures included. The observer only queues what it sees (it runs inside the emulator's
request handling, where time-scaled tests must not be slowed down); the queue is validated with
:func:`tests.conformance.schemas.check` when the test asks (:meth:`Recorder.tally`) and at
teardown, which fails the test if any response violates its published schema, naming the
provider, route, status, the failing body path and schema keyword, the message and a truncated
body. Responses a fault rule produced or altered (``injected``) are skipped; routes and statuses
the document does not describe, and non-JSON bodies, are counted only.

The session's totals per provider are printed in the terminal summary (and added up across
pytest-xdist workers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from providers.sandbox.server import ObservedResponse, observe_responses
from tests.conformance.schemas import Result, Verdict, check

__all__ = ["Finding", "Recorder", "Tally", "conformance"]

BODY_PREVIEW: Final = 600  # characters of a failing body shown in the report
FLUSH_AT: Final = 5000  # queued responses validated at once when a test produces this many
_SKIPPED_INJECTED: Final = "injected (skipped)"
_WORKER_KEY: Final = "conformance_tally"


@dataclass
class Tally:
    """Counts per provider and verdict (plus injected responses, skipped), and per route and status."""

    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)
    routes: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)

    def add(self, provider: str, verdict: str, route: str = "", status: int = 0) -> None:
        self.verdicts[(provider, verdict)] += 1
        self.routes[(provider, verdict, route, status)] += 1

    def count(self, provider: str, verdict: Verdict | str) -> int:
        key = verdict.value if isinstance(verdict, Verdict) else verdict
        return self.verdicts[(provider, key)]

    def described(self, provider: str) -> int:
        """Responses of ``provider`` that its document describes (valid or not)."""
        return self.count(provider, Verdict.VALID) + self.count(provider, Verdict.INVALID)

    def merge(self, other: Tally) -> None:
        self.verdicts.update(other.verdicts)
        self.routes.update(other.routes)

    def as_dict(self) -> dict[str, Any]:
        return {"verdicts": [[p, v, n] for (p, v), n in sorted(self.verdicts.items())],
                "routes": [[p, v, r, s, n] for (p, v, r, s), n in sorted(self.routes.items())]}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Tally:
        tally = cls()
        for p, v, n in raw.get("verdicts", []):
            tally.verdicts[(p, v)] += n
        for p, v, r, s, n in raw.get("routes", []):
            tally.routes[(p, v, r, s)] += n
        return tally

    def lines(self) -> list[str]:
        """One line per provider with its counts, then the routes and statuses it left undescribed."""
        providers = sorted({p for p, _ in self.verdicts})
        order = [v.value for v in Verdict] + [_SKIPPED_INJECTED]
        out: list[str] = []
        for p in providers:
            out.append(f"{p}: " + ", ".join(f"{self.verdicts[(p, v)]} {v}" for v in order if self.verdicts[(p, v)]))
            undescribed = sorted((r, s, n) for (q, v, r, s), n in self.routes.items()
                                 if q == p and v == Verdict.NOT_DESCRIBED.value)  # fmt: skip
            if undescribed:
                out.append("  not described: " + ", ".join(f"{r} {s} x{n}" for r, s, n in undescribed))
        return out


@dataclass(frozen=True)
class Finding:
    """A response that violates its published schema."""

    observed: ObservedResponse
    result: Result

    def describe(self) -> str:
        o, r = self.observed, self.result
        body = o.body.decode("utf-8", "replace")
        if len(body) > BODY_PREVIEW:
            body = body[:BODY_PREVIEW] + f"... ({len(o.body)} bytes)"
        lines = [f"{o.provider} {o.route} -> {o.status} ({o.method} {o.path}), schema {r.described_by}:"]
        lines += [f"  at {v.instance_path} [{v.schema_path}]: {v.message}" for v in r.violations]
        lines.append(f"  body: {body}")
        return "\n".join(lines)


class Recorder:
    """What one test's emulators answered: queued by the observer, validated lazily."""

    def __init__(self) -> None:
        self._queue: list[ObservedResponse] = []
        self.tally = Tally()
        self.findings: list[Finding] = []

    def observe(self, observed: ObservedResponse) -> None:
        """The observer: queue (cheap; runs inside the emulator). Validates only past :data:`FLUSH_AT`."""
        self._queue.append(observed)
        if len(self._queue) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Validate everything queued so far."""
        queued, self._queue = self._queue, []
        for observed in queued:
            self._check(observed)

    def _check(self, observed: ObservedResponse) -> None:
        if observed.injected:
            self.tally.add(observed.provider, _SKIPPED_INJECTED, observed.route, observed.status)
            return
        result = check(observed.provider, observed.route, observed.status, observed.body,
                       content_type=observed.content_type)  # fmt: skip
        self.tally.add(observed.provider, result.verdict.value, observed.route, observed.status)
        if result.verdict is Verdict.INVALID:
            self.findings.append(Finding(observed, result))

    def snapshot(self) -> Tally:
        """The counts so far (validates what is queued)."""
        self.flush()
        return self.tally

    def report(self) -> str:
        shown = self.findings[:10]
        more = len(self.findings) - len(shown)
        text = "\n".join(f.describe() for f in shown)
        tail = f"\n... and {more} more" if more else ""
        return (f"{len(self.findings)} emulator response(s) violate the providers' published schemas "
                f"(tests/fixtures/<provider>/SOURCE.md):\n{text}{tail}")  # fmt: skip


_SESSION = Tally()


@pytest.fixture(autouse=True)
def conformance() -> Iterator[Recorder]:
    """Check every emulator response of this test against its published schema (see module doc)."""
    recorder = Recorder()
    unsubscribe = observe_responses(recorder.observe)
    try:
        yield recorder
    finally:
        unsubscribe()
        recorder.flush()
        _SESSION.merge(recorder.tally)
    if recorder.findings:
        pytest.fail(recorder.report(), pytrace=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: hand the counts to the controller
        workeroutput[_WORKER_KEY] = _SESSION.as_dict()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    raw = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if raw:
        _SESSION.merge(Tally.from_dict(raw))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = _SESSION.lines()
    if lines:
        terminalreporter.write_sep("-", "schema conformance of emulator responses")
        for line in lines:
            terminalreporter.write_line(line)
