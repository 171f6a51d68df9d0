"""A provider adapter wired to the real core (client, limits, retries, scheduler) on a fake clock.

Used by the aioresponses layer: no sockets, exact request sequences.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aioresponses import aioresponses
from pydantic import SecretStr
from yarl import URL

from aggregator.config import HttpSettings, RetrySettings, load_settings
from aggregator.contract import ProviderAdapter
from aggregator.events import Event
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.jobstore import InMemoryJobStore
from aggregator.limits import ProviderLimiter
from aggregator.models import SearchRequest
from aggregator.retry import RetryPolicy
from aggregator.scheduler import JobRunner
from tests.fakes import FakeClock


class Harness:
    """``Harness(session, ExtructAdapter, base_url, key, page_size=2)`` -> ``.runner(request).run()``."""

    def __init__(self, session: aiohttp.ClientSession, adapter_cls: type[ProviderAdapter], base_url: str,
                 api_key: str, **settings: Any) -> None:
        self.clock = FakeClock()
        self.store = InMemoryJobStore()
        self.http = HttpClient(HttpSettings(), session)
        provider_settings = load_settings(env={}).providers[adapter_cls.name].model_copy(
            update={"base_url": base_url, **settings})
        limits = adapter_cls.limits_from(provider_settings)
        self.limiter = ProviderLimiter(adapter_cls.name, limits, self.clock)
        self.client = ProviderHTTPClient(
            provider=adapter_cls.name, base_url=base_url, http=self.http, limiter=self.limiter,
            retry=RetryPolicy(RetrySettings(backoff_initial_s=0.5), self.clock), clock=self.clock,
            api_key=SecretStr(api_key), auth_headers=adapter_cls.auth_headers,
        )
        self.adapter = adapter_cls(self.client, provider_settings)
        self.events: list[Event] = []

    def runner(self, request: SearchRequest, deadline_s: float = 10_000.0) -> JobRunner:
        return JobRunner(run_id="run-1", adapter=self.adapter, request=request, limiter=self.limiter,
                         poll_policy=type(self.adapter).poll_policy_from(self.adapter.settings),
                         store=self.store, clock=self.clock, deadline_at=deadline_s,
                         emit=self.events.append)


def bodies(mock: aioresponses, method: str, url: str) -> list[Any]:
    """The JSON bodies sent to ``method url``, in order."""
    return [orjson.loads(call.kwargs["data"]) for call in mock.requests.get((method, URL(url)), [])]


def in_order(mock: aioresponses, base_url: str = "") -> list[str]:
    """From now on, log every request ``mock`` receives as ``"METHOD /path?query"``, in the order sent.

    ``mock.requests`` groups calls by URL, so it loses the order between URLs; this keeps it, with
    the full query string (parameters sorted by name, as aioresponses normalizes them) so tests can
    assert exact offsets, limits and cursors. ``base_url`` is cut from the front of each URL.
    """
    sent: list[str] = []
    match = mock.match

    async def logged(method: str, url: URL, **kwargs: Any) -> Any:
        sent.append(f"{method} {str(url).removeprefix(base_url)}")
        return await match(method, url, **kwargs)

    mock.match = logged  # type: ignore[method-assign]
    return sent


def calls(mock: aioresponses, method: str, url_part: str) -> list[Any]:
    """Every call whose method matches and whose URL contains ``url_part``, in no particular order."""
    return [call for (verb, url), items in mock.requests.items()
            if verb == method and url_part in str(url) for call in items]
