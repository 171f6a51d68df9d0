"""Per-provider call statistics behind ``GET /_sandbox/stats`` (design §4).

Each emulator owns one :class:`StatsRecorder`. The shared middleware counts every call and its
response status per *route key* (``"POST /search/query"``: method plus route template), marks
injected faults, and emulators mark the 429s they serve themselves (``rate_limited``) and bump
provider counters such as ``jobs_started`` and ``credits_charged``. Tests read the document to
prove properties like "nothing was paid twice" or "the client never exceeded the limit".

Document shape (one provider)::

    {"provider": "sixtyfour",
     "endpoints": {"POST /search/start-deep-search":
                       {"calls": 3, "statuses": {"200": 2, "429": 1},
                        "rate_limited": 1, "faults_injected": 0}},
     "peak_in_flight": {"POST /search/start-deep-search": 2},  # most requests being handled at once
     "peak_jobs_in_flight": 5,  # most jobs running at once (None until a probe is tracked)
     "jobs_started": 2, "credits_charged": 0.0, "rate_limited": 1, ...provider counters}

The peaks let tests prove concurrency caps held across client processes. Requests in flight are
counted by the shared middleware (from arrival to response); jobs in flight need the emulator's own
count, given with :meth:`StatsRecorder.track_jobs` and sampled after every request that started a
job (the only moment the count can rise).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["EndpointStats", "RecordedRequest", "StatsRecorder"]

REQUEST_LOG_SIZE = 20_000  # the newest requests kept per provider (a bench or soak sends far more)
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})


@dataclass
class RecordedRequest:
    """One request as the emulator received it (auth headers left out), for tests to assert on.

    Attributes:
        route: ``"METHOD /template"`` route key (``"POST /search/query"``).
        method, path: as received; ``query`` the query parameters (last value wins).
        headers: request headers, lower-cased names, without credentials.
        body: the raw request body (``b""`` when none).
        received_at_s: the sandbox clock's ``monotonic()`` when the request arrived (virtual seconds).
        status: the response status, ``"reset"`` for an aborted connection, None while in flight.
    """

    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    received_at_s: float
    status: int | str | None = None

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return orjson.loads(self.body) if self.body else None


@dataclass
class EndpointStats:
    """Counters of one route key."""

    calls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    faults_injected: int = 0

    def to_doc(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "statuses": dict(sorted(self.statuses.items())),
            "rate_limited": self.rate_limited,
            "faults_injected": self.faults_injected,
        }


class StatsRecorder:
    """Mutable statistics of one provider's emulator.

    Args:
        provider: provider name, echoed as ``"provider"`` in the document.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._endpoints: dict[str, EndpointStats] = {}
        self._counters: dict[str, float] = {"jobs_started": 0, "credits_charged": 0.0}
        self._requests: deque[RecordedRequest] = deque(maxlen=REQUEST_LOG_SIZE)
        self._in_flight: Counter[str] = Counter()
        self._peak_in_flight: dict[str, int] = {}
        self._jobs_probe: Callable[[], int] | None = None
        self._peak_jobs = 0

    def endpoint(self, route_key: str) -> EndpointStats:
        """The counters of ``route_key``, created on first use."""
        return self._endpoints.setdefault(route_key, EndpointStats())

    def count_call(self, route_key: str) -> None:
        self.endpoint(route_key).calls += 1

    def count_status(self, route_key: str, status: int | str) -> None:
        """Record one response status (``"reset"`` for an aborted connection)."""
        self.endpoint(route_key).statuses[str(status)] += 1

    def record_request(self, route: str, method: str, path: str, query: Mapping[str, str],
                       headers: Mapping[str, str], body: bytes, received_at_s: float) -> RecordedRequest:
        """Log one received request (credentials dropped); set its ``status`` once answered."""
        kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}
        entry = RecordedRequest(route, method, path, dict(query), kept, body, received_at_s)
        self._requests.append(entry)
        return entry

    def requests(self, route: str | None = None) -> list[RecordedRequest]:
        """Requests received so far, oldest first (only ``route``'s when given)."""
        return [r for r in self._requests if route is None or r.route == route]

    def request_started(self, route_key: str) -> None:
        """A request to ``route_key`` arrived (counted in flight until :meth:`request_finished`)."""
        in_flight = self._in_flight[route_key] = self._in_flight[route_key] + 1
        if in_flight > self._peak_in_flight.get(route_key, 0):
            self._peak_in_flight[route_key] = in_flight

    def request_finished(self, route_key: str) -> None:
        self._in_flight[route_key] -= 1

    def track_jobs(self, probe: Callable[[], int]) -> None:
        """Report ``peak_jobs_in_flight``: ``probe()`` is the number of jobs running now (all orgs)."""
        self._jobs_probe = probe
        self.sample_jobs()

    def sample_jobs(self) -> None:
        """Update the peak of jobs in flight from the probe (no-op without one)."""
        if self._jobs_probe is not None:
            self._peak_jobs = max(self._peak_jobs, self._jobs_probe())

    def count_fault(self, route_key: str) -> None:
        self.endpoint(route_key).faults_injected += 1

    def count_rate_limited(self, route_key: str) -> None:
        """Record one 429 served by the emulator's own limits (not an injected fault)."""
        self.endpoint(route_key).rate_limited += 1

    def declare(self, name: str, initial: float = 0) -> None:
        """Make provider counter ``name`` appear in the document even while zero."""
        self._counters.setdefault(name, initial)

    def add(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to provider counter ``name`` (e.g. ``jobs_started``, ``credits_charged``)."""
        self._counters[name] = self._counters.get(name, 0) + amount

    def counter(self, name: str) -> float:
        return self._counters.get(name, 0)

    def snapshot(self) -> dict[str, Any]:
        """The ``/_sandbox/stats`` document of this provider (a fresh copy)."""
        doc: dict[str, Any] = {
            "provider": self.provider,
            "endpoints": {key: ep.to_doc() for key, ep in sorted(self._endpoints.items())},
            "rate_limited": sum(ep.rate_limited for ep in self._endpoints.values()),
            "peak_in_flight": dict(sorted(self._peak_in_flight.items())),
            "peak_jobs_in_flight": self._peak_jobs if self._jobs_probe is not None else None,
        }
        doc.update(self._counters)
        doc["credits_charged"] = float(self._counters.get("credits_charged", 0.0))
        return doc
