"""The one place that touches aiohttp: session ownership, orjson, error mapping, limits, retries.

:class:`HttpClient` owns (or borrows) the single ``aiohttp.ClientSession`` of an
:class:`~aggregator.Aggregator`. :class:`ProviderHTTPClient` binds it to one provider: base URL,
auth header (built from a ``SecretStr`` at send time, never stored in plain text, never logged),
its :class:`~aggregator.limits.ProviderLimiter`, its :class:`~aggregator.retry.RetryPolicy` and the
account's budget (:class:`~aggregator.coordination.AccountBudget`, when ``[budgets.<provider>]`` sets one).

Every failure becomes a typed :mod:`aggregator.errors` exception here (``raise ... from exc``):

====================  ==========================================  ======================
what happened         error                                       retried
====================  ==========================================  ======================
401 / 403             AuthError                                   no
402                   InsufficientCreditsError                    no
400/404/409/422/4xx   InvalidRequestError                         only ``retry_on``
429                   RateLimitedError (.retry_after_s)           yes; pauses the bucket
5xx                   ProviderServerError (.retry_after_s)        idempotent calls only
connection failure    ProviderConnectionError                     idempotent (or not sent)
unknown host name     ProviderConnectionError                     no (DNS outage: yes)
timeout               ProviderTimeoutError                        idempotent calls only
bad JSON              ProviderProtocolError                       idempotent calls only
circuit open          CircuitOpenError (nothing sent)             no
====================  ==========================================  ======================

The account's circuit breaker (:mod:`aggregator.breaker`, ``[breaker]``) counts every attempt; the
failure that opens it surfaces as a :class:`CircuitOpenError` chained to it, so it is not retried.

A call is *idempotent* when repeating it cannot start or charge anything twice: reads, and submits
that carry the provider's idempotency key. The request body is serialized once, so every retry
sends byte-identical JSON with the same key.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import SecretStr

from aggregator.breaker import CircuitBreaker
from aggregator.budget import current_budget
from aggregator.clock import Clock
from aggregator.config import HttpSettings
from aggregator.contract import Response
from aggregator.coordination import AccountBudget
from aggregator.errors import (
    AuthError,
    BudgetExceededError,
    InsufficientCreditsError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitedError,
)
from aggregator.limits import ProviderLimiter
from aggregator.log import get_logger
from aggregator.retry import RetryPolicy, parse_retry_after, retry_after_from_body
from aggregator.telemetry import instrument as telemetry

__all__ = ["CallStats", "HttpClient", "ProviderHTTPClient", "error_code", "error_for_status"]

log = get_logger("aggregator.http")
USER_AGENT = "deepsearch-aggregator/0.1"
DEFAULT_429_PAUSE_S = 1.0


class HttpClient:
    """Owns the aiohttp session (or borrows an injected one, which it then never closes)."""

    def __init__(self, settings: HttpSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self._session = session
        self._owned = session is None

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self.settings.timeout_s, sock_connect=self.settings.connect_timeout_s
                ),
                headers={"User-Agent": USER_AGENT},
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient is not open: use `async with Aggregator(...)`")
        return self._session


@dataclass
class CallStats:
    """Call counters: of one provider client (all its runs), or of one provider job of one run."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0


current_call_stats: ContextVar[CallStats | None] = ContextVar("current_call_stats", default=None)
"""The counters of the provider job running in this task (set by the scheduler), besides the client's."""


def _counters(client_stats: CallStats) -> tuple[CallStats, ...]:
    job_stats = current_call_stats.get()
    return (client_stats,) if job_stats is None or job_stats is client_stats else (client_stats, job_stats)


def _excerpt(raw: bytes, secret: str | None) -> str:
    text = raw[:600].decode("utf-8", "replace")
    return text.replace(secret, "***") if secret else text


def _dns_error(exc: aiohttp.ClientConnectorDNSError, ctx: Mapping[str, Any]) -> ProviderConnectionError:
    """A failed name lookup. A name that does not resolve (``EAI_NONAME``, ``EAI_NODATA``,
    ``EAI_FAIL``) stays unresolvable however long we retry: not retryable, and the message says to
    check the base URL. Only a resolver outage (``EAI_AGAIN``, "temporary failure") is retried."""
    code = getattr(exc.os_error, "errno", None)
    if code == socket.EAI_AGAIN:
        return ProviderConnectionError(f"cannot resolve host name {exc.host!r} (temporary DNS failure)", **ctx)
    return ProviderConnectionError(f"host name {exc.host!r} does not resolve: check the provider's base URL",
                                   retryable=False, **ctx)


def error_code(body: bytes) -> str | None:
    """A provider's machine-readable error code from a JSON error body, if it has one.

    Reads ``{"error": {"code"}}`` (Orbit), ``{"detail": {"error"|"code"}}`` (Extruct 402 and
    FastAPI-style services) and ``{"code"}``; anything else gives None.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for container in (data.get("error"), data.get("detail"), data):
        if isinstance(container, dict):
            for key in ("code", "error"):
                if isinstance(container.get(key), str):
                    return str(container[key])
    return None


def error_for_status(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, endpoint: str,
    idempotent: bool, retry_on: frozenset[int] = frozenset(), secret: str | None = None,
) -> ProviderHTTPError:
    """The typed error for an HTTP error status (see the table in the module docstring)."""
    excerpt = _excerpt(body, secret)
    common: dict[str, Any] = {"status": status, "body_excerpt": excerpt, "provider": provider,
                              "endpoint": endpoint, "code": error_code(body)}
    message = excerpt[:200] or "empty body"
    if status == 429:
        hint = parse_retry_after(headers)
        hint = hint if hint is not None else retry_after_from_body(excerpt)
        return RateLimitedError(message, retry_after_s=hint, **common)
    if status >= 500:
        return ProviderServerError(message, retry_after_s=parse_retry_after(headers),
                                   retryable=idempotent or status in retry_on, **common)
    if status in (401, 403):
        return AuthError(message, **common)
    if status == 402:
        return InsufficientCreditsError(message, **common)
    return InvalidRequestError(message, retryable=status in retry_on, **common)


class ProviderHTTPClient:
    """The :class:`~aggregator.contract.ProviderClient` the core injects into one adapter."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        http: HttpClient,
        limiter: ProviderLimiter,
        retry: RetryPolicy,
        clock: Clock,
        api_key: SecretStr | None,
        auth_headers: Callable[[str], dict[str, str]],
        account_budget: AccountBudget | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.limiter = limiter
        self.retry = retry
        self.clock = clock
        self._api_key = api_key
        self._auth_headers = auth_headers
        self.account_budget = account_budget
        self.breaker = breaker  # the account's circuit breaker (aggregator.breaker); None: disabled
        self.stats = CallStats()

    def __repr__(self) -> str:
        return f"ProviderHTTPClient(provider={self.provider!r}, base_url={self.base_url!r})"

    async def affordable(self, wanted: int, unit_cost: float) -> int:
        """How many of ``wanted`` units of ``unit_cost`` credits each (profile reads, matches) every budget
        that applies still covers: the run's, the account's ``[budgets.<provider>]`` and the context's
        shared ones (a batch's); ``wanted`` without any budget. Adapters shrink a paid call to it (the call
        still reserves its cost atomically: another process may spend meanwhile).

        Raises:
            BudgetExceededError: not one unit is covered (``budget`` names the tightest budget).
            CoordinationUnavailableError: a shared budget cannot be read.
        """
        if unit_cost <= 0 or wanted <= 0:
            return wanted
        left = [(budget.available, "the run's budget")] if (budget := current_budget.get()) is not None else []
        if self.account_budget is not None:
            scopes = self.account_budget.applying()
            usages = await self.account_budget.usage()
            left += [(usage.available, scope.label) for scope, usage in zip(scopes, usages, strict=True)]
        if not left:
            return wanted
        available, label = min(left)
        affordable = min(wanted, int((available + 1e-9) // unit_cost))
        if affordable < 1:
            raise BudgetExceededError(needed=unit_cost, remaining=available, provider=self.provider, budget=label)
        return affordable

    def _count_retry(self, error: ProviderError, wait_s: float) -> None:
        for stats in _counters(self.stats):
            stats.retries += 1
        telemetry.record_retry(self.provider, error.endpoint, error, wait_s)

    def _secret(self) -> str | None:
        return self._api_key.get_secret_value() if self._api_key else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = False,
        expect: Literal["json", "text"] = "json",
        retry_on: frozenset[int] = frozenset(),
        cost: float = 0.0,
        charged: Callable[[Response], float | None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one logical call (retried per policy) and return the parsed response.

        Args:
            method: HTTP method. path: path under the base URL (``/search/query``).
            endpoint: ``"METHOD /template"`` for limits, errors and logs.
            json: request body, serialized once with orjson.
            idempotent: whether the call may be repeated after an ambiguous failure.
            expect: ``"json"`` (orjson-parsed) or ``"text"``.
            retry_on: extra 4xx statuses this call may retry (e.g. 409 "cursor busy").
            cost: credits the call costs; reserved from the run's budget and the account's
                ``[budgets.<provider>]`` budget (if any) before sending.
            charged: reconciles ``cost`` with what the provider reports (a balance header, a refund
                flag): called with the response, returns the credits actually charged (capped at
                ``cost``), or None for ``cost``. The budget settles at that amount and the returned
                response carries it as ``credits_charged``.
            headers: extra request headers (an ``Idempotency-Key``), sent on every attempt.

        Raises:
            BudgetExceededError: the run's or the account's budget cannot cover ``cost`` (nothing was sent).
            CoordinationUnavailableError: the shared limits or budgets cannot be reached (nothing was sent).
            CircuitOpenError: the account's circuit breaker is open (nothing was sent), or this call's
                failure opened it (chained to that failure; not retried).
            ProviderError subclasses, per the module table.
        """
        body = orjson.dumps(json) if json is not None else None
        sent_headers = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent_headers["Content-Type"] = "application/json"
        secret = self._secret()
        if secret:
            sent_headers.update(self._auth_headers(secret))

        async def attempt() -> Response:
            breaker = self.breaker  # refuses at once while open (CircuitOpenError: not retried)
            probe = await breaker.admit(endpoint) if breaker is not None else False
            try:
                async with self.limiter.slot(endpoint):
                    response = await self._send(method, self.base_url + path, endpoint, body, params,
                                                sent_headers, idempotent, expect, retry_on, follow_redirects=False)
            except BaseException as exc:
                if breaker is not None and (opened := await breaker.done(probe, exc, endpoint)) is not None:
                    raise opened from exc  # this failure opened the circuit: no retry
                raise
            if breaker is not None:
                await breaker.done(probe, None, endpoint)
            return response

        budget = current_budget.get() if cost > 0 else None
        reservation = budget.reserve(cost, self.provider) if budget is not None else None
        account = self.account_budget if cost > 0 else None
        hold = None
        try:
            if account is not None:  # the account's (per period) and the batch's, shared by every process
                hold = await account.reserve(cost)
            response = await self.retry.call(attempt, on_retry=self._count_retry)
        except BaseException:
            if budget is not None and reservation is not None:
                budget.release(reservation)
            if account is not None and hold is not None:
                await account.release(hold)
            raise
        if cost <= 0:
            return response
        actual = charged(response) if charged is not None else None
        actual = cost if actual is None else min(max(actual, 0.0), cost)
        if budget is not None and reservation is not None:
            budget.settle(reservation, actual)
        if account is not None and hold is not None:
            await account.settle(hold, actual)
        telemetry.record_credits(self.provider, endpoint, actual)
        return dataclasses.replace(response, credits_charged=actual)

    async def get_external(self, url: str, *, endpoint: str) -> Response:
        """GET a URL the provider handed out (a signed download URL) WITHOUT the API key."""

        async def attempt() -> Response:
            return await self._send("GET", url, endpoint, None, None, {}, True, "text", frozenset(),
                                    follow_redirects=True)  # no key is sent: storage may redirect freely

        return await self.retry.call(attempt, on_retry=self._count_retry)

    async def _send(
        self, method: str, url: str, endpoint: str, body: bytes | None,
        params: Mapping[str, str] | None, headers: Mapping[str, str], idempotent: bool,
        expect: Literal["json", "text"], retry_on: frozenset[int], *, follow_redirects: bool,
    ) -> Response:
        """:meth:`_exchange`, observed by :mod:`aggregator.telemetry` (a ``deepsearch.http`` span per
        attempt, the request metrics) when anything listens."""
        observed = telemetry.http_attempt(self.provider, endpoint, method)
        if observed is None:
            return await self._exchange(method, url, endpoint, body, params, headers, idempotent, expect,
                                        retry_on, follow_redirects=follow_redirects)
        try:
            response = await self._exchange(method, url, endpoint, body, params, headers, idempotent, expect,
                                            retry_on, follow_redirects=follow_redirects)
        except BaseException as exc:
            observed.failed(exc)
            raise
        observed.succeeded(response.status)
        return response

    async def _exchange(
        self, method: str, url: str, endpoint: str, body: bytes | None,
        params: Mapping[str, str] | None, headers: Mapping[str, str], idempotent: bool,
        expect: Literal["json", "text"], retry_on: frozenset[int], *, follow_redirects: bool,
    ) -> Response:
        """One HTTP exchange. API calls never follow redirects: aiohttp would re-send custom auth
        headers (``x-api-key``) to whatever host a redirect names, so a 3xx is a protocol error."""
        ctx: dict[str, Any] = {"provider": self.provider, "endpoint": endpoint}
        for stats in _counters(self.stats):
            stats.calls += 1
        started = self.clock.monotonic()
        try:
            async with self.http.session.request(
                method, url, data=body, params=params, headers=headers, allow_redirects=follow_redirects,
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, dict(resp.headers)
        except aiohttp.ClientResponseError as exc:  # e.g. TooManyRedirects; its repr holds the request headers
            raise ProviderProtocolError(f"bad response: {type(exc).__name__} (status {exc.status})",
                                        **ctx) from None
        except aiohttp.ClientConnectorDNSError as exc:  # the host name does not resolve: not transient
            raise _dns_error(exc, ctx) from exc
        except aiohttp.ClientConnectorError as exc:  # never reached the server: always safe
            raise ProviderConnectionError(f"cannot connect: {exc.os_error}", **ctx) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ProviderConnectionError(f"connection failed: {type(exc).__name__}",
                                          retryable=idempotent, **ctx) from exc
        except TimeoutError as exc:
            raise ProviderTimeoutError("no response within the HTTP timeout",
                                       retryable=idempotent, **ctx) from exc
        log.debug("http.response", **ctx, status=status,
                  elapsed_s=round(self.clock.monotonic() - started, 4))
        if 300 <= status < 400:
            target = urlsplit(resp_headers.get("Location", ""))
            raise ProviderProtocolError(f"unexpected redirect ({status}) to {target.scheme}://{target.netloc}; "
                                        "API calls do not follow redirects (the key would go along)", **ctx)
        if status >= 400:
            error = error_for_status(status, resp_headers, raw, idempotent=idempotent,
                                     retry_on=retry_on, secret=self._secret(), **ctx)
            if isinstance(error, RateLimitedError):
                for stats in _counters(self.stats):
                    stats.rate_limited += 1
                pause = error.retry_after_s if error.retry_after_s is not None else DEFAULT_429_PAUSE_S
                await self.limiter.pause(endpoint, pause)
            raise error
        return Response(status=status, headers=resp_headers,
                        data=self._parse(raw, expect, idempotent, ctx))

    def _parse(self, raw: bytes, expect: str, idempotent: bool, ctx: dict[str, Any]) -> Any:
        if expect == "text":
            return raw.decode("utf-8", "replace")
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise ProviderProtocolError(
                f"response is not valid JSON ({exc}); starts with {_excerpt(raw[:80], self._secret())!r}",
                retryable=idempotent, **ctx,
            ) from exc


