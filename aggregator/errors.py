"""The whole exception tree of deepsearch-aggregator.

::

    AggregatorError
    ├── ConfigError (also ValueError)   bad setting/argument; raised before any request
    │   └── DatabaseError               the PostgreSQL backend cannot be used; .address (no password)
    │       ├── DatabaseUnavailableError    unreachable, refused, or gone: fail closed
    │       │   └── CoordinationUnavailableError  shared limits/leases/budgets unreachable: no paid call sent
    │       └── DatabaseSchemaError         schema behind (or ahead of) this version; .current .required
    ├── ProviderError                   .provider .endpoint .request_id; .retryable
    │   ├── ProviderHTTPError           .status .body_excerpt (never secrets)
    │   │   ├── AuthError 401/403       not retryable; provider skipped for the run
    │   │   ├── InvalidRequestError 400/404/409/422
    │   │   ├── InsufficientCreditsError 402
    │   │   ├── RateLimitedError 429    .retry_after_s
    │   │   └── ProviderServerError 5xx .retry_after_s
    │   ├── ProviderConnectionError     connection refused/reset, DNS, TLS
    │   ├── ProviderTimeoutError        no response within the HTTP timeout
    │   ├── ProviderProtocolError       unparseable body, unknown status value
    │   ├── JobFailedError              the provider said the job failed; .reason
    │   └── CircuitOpenError            the account's circuit breaker is open: nothing sent; .open_until
    ├── DeadlineExceededError           .job (the JobRef) so the run can resume
    ├── BudgetExceededError             the next paid call would exceed a credit budget (run or account)
    └── SearchFailedError               every provider failed; .outcomes

HTTP failures are translated into this tree at one boundary (:mod:`aggregator.http`); adapters raise
:class:`ProviderProtocolError` for bodies that do not fit the documented shape. A provider failing is
normally recorded in its :class:`~aggregator.models.ProviderOutcome`, not raised to the caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.contract import JobRef
    from aggregator.models import ProviderOutcome

__all__ = [
    "AggregatorError",
    "AuthError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ConfigError",
    "CoordinationUnavailableError",
    "DatabaseError",
    "DatabaseSchemaError",
    "DatabaseUnavailableError",
    "DeadlineExceededError",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "JobFailedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderProtocolError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "SearchFailedError",
    "did_you_mean",
]

BODY_EXCERPT_CHARS = 300
INPUT_REPR_CHARS = 80  # an invalid value quoted in a ConfigError message


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` that ``name`` most likely misspells (case aside), or None."""
    by_folded = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


class AggregatorError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(AggregatorError, ValueError):
    """An argument or setting is invalid. Raised before any network call.

    The message names the field and how to fix it, e.g.
    ``max_results: must be between 1 and 5000, got 0``.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    @classmethod
    def unknown(cls, where: str, name: str, what: str, known: Iterable[str]) -> ConfigError:
        """``name`` (inside ``where``, e.g. ``providers``) is no known ``what`` (``"provider"``,
        ``"field"``): says so, suggests the closest of ``known`` and lists them, e.g.
        ``providers.sixtyfor: unknown provider; did you mean 'sixtyfour'? (known: extruct, orbit, sixtyfour)``.
        """
        names = sorted(known)
        guess = did_you_mean(name, names)
        hint = f"did you mean {guess!r}?" if guess else "check its spelling or remove it"
        listed = f" (known: {', '.join(names)})" if names else ""
        return cls(f"{where}.{name}" if where else name, f"unknown {what}; {hint}{listed}")

    @classmethod
    def from_validation(cls, exc: Any, prefix: str = "", default: str = "request") -> ConfigError:
        """The first error of a pydantic ``ValidationError`` as a ConfigError.

        The field is ``prefix`` + the error's location (``criteria[0].key``, ``run.max_results``);
        the problem is pydantic's message with the offending input (its repr cut to
        ``INPUT_REPR_CHARS``); an unknown key says so and asks to check its spelling.
        """
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        if prefix and where:
            where = prefix + (where if where.startswith("[") else f".{where}")
        field = where or prefix or default
        message = str(first["msg"]).removeprefix("Value error, ")
        if first.get("type") == "extra_forbidden":
            message = "unknown field; check its spelling or remove it"
        if first.get("type") != "value_error" and first.get("input") is not None:
            shown = repr(first["input"])
            if len(shown) > INPUT_REPR_CHARS:
                shown = shown[:INPUT_REPR_CHARS] + "…"
            message += f" (got {shown})"
        return cls(field, message)


class DatabaseError(ConfigError):
    """The PostgreSQL backend (``DEEPSEARCH_DATABASE_URL`` / ``[database] url``) cannot be used.

    A :class:`ConfigError` (field ``database``; the CLI exits 2): at start-up nothing has been sent.
    ``address`` names the server as ``host:port/database``; no message ever holds the password.
    """

    def __init__(self, address: str, problem: str) -> None:
        self.address = address
        super().__init__("database", problem)


class DatabaseUnavailableError(DatabaseError):
    """The database server cannot be reached, refused the connection, or went away mid-run.

    Nothing is guessed around it (fail closed): runs recorded there stay resumable once it is back.
    ``reason`` is the driver's explanation with any password removed.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.reason = reason
        super().__init__(address, f"cannot use the PostgreSQL database at {address}: {reason}. Check that the "
                                  "server is running and reachable, and that DEEPSEARCH_DATABASE_URL (or [database] "
                                  "url) names the right host, port, database, user and password; runs recorded "
                                  "there can be resumed once it is back")


class DatabaseSchemaError(DatabaseError):
    """The database's schema version (``current``) is not the one this deepsearch needs (``required``):
    behind (run ``deepsearch db migrate``) or ahead (a newer deepsearch migrated it: upgrade this one)."""

    def __init__(self, address: str, current: int, required: int) -> None:
        self.current = current
        self.required = required
        if current < required:
            problem = (f"the database schema at {address} is at version {current}; this deepsearch needs "
                       f"{required}: run `deepsearch db migrate`")
        else:
            problem = (f"the database schema at {address} is at version {current}, ahead of this deepsearch, "
                       f"which knows versions up to {required}: a newer deepsearch migrated it; upgrade "
                       "deepsearch-aggregator to use it")
        super().__init__(address, problem)


class ProviderError(AggregatorError):
    """A provider call failed.

    Attributes:
        provider: registry name, e.g. ``"sixtyfour"``.
        endpoint: ``"METHOD /path-template"``, e.g. ``"POST /search/query"``.
        request_id: the provider's request/job id when known.
        retryable: whether the same call may succeed if repeated (class default, per instance).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        endpoint: str,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.request_id = request_id
        if retryable is not None:
            self.retryable = retryable
        super().__init__(f"{provider} {endpoint}: {message}")


class ProviderHTTPError(ProviderError):
    """The provider answered with an HTTP error status.

    Attributes:
        status: the HTTP status code.
        code: the provider's machine-readable error code when its body has one (Orbit's
            ``error.code``, e.g. ``developer_api_idempotency_key_conflict``; Extruct's
            ``detail.error``), else None.
        body_excerpt: the first characters of the response body (secrets are never echoed by
            providers' error bodies; request headers are never included).
    """

    def __init__(
        self, message: str, *, status: int, body_excerpt: str = "", code: str | None = None, **kwargs: Any
    ) -> None:
        self.status = status
        self.code = code
        self.body_excerpt = body_excerpt[:BODY_EXCERPT_CHARS]
        super().__init__(f"HTTP {status}: {message}", **kwargs)


class AuthError(ProviderHTTPError):
    """401/403: the key is missing, invalid or lacks a scope. Not retryable."""


class InvalidRequestError(ProviderHTTPError):
    """400/404/409/422: the provider rejected the request as sent."""


class InsufficientCreditsError(ProviderHTTPError):
    """402: the account has no credits (or no subscription) for this call."""


class RateLimitedError(ProviderHTTPError):
    """429. ``retry_after_s`` is the provider's Retry-After in seconds, or None if absent."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, **kwargs)


class ProviderServerError(ProviderHTTPError):
    """5xx. Retryable; ``retry_after_s`` is set when the provider sent Retry-After."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, **kwargs)


class ProviderConnectionError(ProviderError):
    """The connection failed or was reset before a complete response arrived. Retryable."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """No complete response within the HTTP timeout. Retryable."""

    retryable = True


class ProviderProtocolError(ProviderError):
    """The response does not fit the documented contract (bad JSON, unknown status, missing field)."""


class JobFailedError(ProviderError):
    """The provider reports that the job itself failed; ``reason`` is its message or code."""

    def __init__(self, reason: str, **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(f"job failed: {reason}", **kwargs)


class CircuitOpenError(ProviderError):
    """The provider account's circuit breaker is open (:mod:`aggregator.breaker`): the call was not sent.
    Not retryable: retries stop at once, and a strategy moves on.

    Attributes:
        open_until: when a probe may be sent again (UTC wall time of the caller's clock).
        retry_in_s: clock seconds until then (0 while another caller's probe is in flight).
        failures: failures counted since the circuit last closed.
        probing: another caller's half-open probe is in flight.
        note: the message without the provider (``circuit open until 14:03:07 UTC (9 failures; next
            probe after 12.5 s)``), as a skipped step's outcome note says it.
    """

    retryable = False

    def __init__(self, *, provider: str, open_until: datetime, retry_in_s: float, failures: int,
                 endpoint: str = "*", probing: bool = False) -> None:
        self.open_until = open_until
        self.retry_in_s = retry_in_s
        self.failures = failures
        self.probing = probing
        self.note = self.describe(open_until, retry_in_s, failures, probing)
        super().__init__(self.note, provider=provider, endpoint=endpoint)

    @staticmethod
    def describe(open_until: datetime, retry_in_s: float, failures: int, probing: bool = False) -> str:
        """``circuit open until 14:03:07 UTC (9 failures; next probe after 12.5 s)``."""
        unit = "failure" if failures == 1 else "failures"
        if probing:
            return f"circuit half-open ({failures} {unit}; a probe is in flight)"
        return (f"circuit open until {open_until:%H:%M:%S} UTC ({failures} {unit}; "
                f"next probe after {round(retry_in_s, 1):g} s)")


class DeadlineExceededError(AggregatorError):
    """The run's deadline passed before the job finished. ``job`` lets a later run resume it."""

    def __init__(self, message: str, *, job: JobRef | None = None) -> None:
        self.job = job
        super().__init__(message)


class BudgetExceededError(AggregatorError):
    """The next paid call would take spend over a credit budget (the run's ``budget``, or an account's
    ``[budgets.<provider>]`` for its period, named in ``budget``); the call was not made."""

    def __init__(self, *, needed: float, remaining: float, provider: str | None = None,
                 budget: str | None = None) -> None:
        self.needed = needed
        self.remaining = remaining
        self.provider = provider
        self.budget = budget  # which budget refused, e.g. "the account budget of 100 credits per day"
        who = f"{provider}: " if provider else ""
        unit = "credit" if needed == 1 else "credits"
        super().__init__(f"{who}next call needs {needed:g} {unit}, {remaining:g} left in {budget or 'budget'}")


class CoordinationUnavailableError(DatabaseUnavailableError):
    """The database that coordinates rate limits, leases and credit budgets across processes cannot be
    reached, or failed mid-operation: the call that needed it was not sent (fail closed).

    ``address`` names the server as ``host:port/database`` and ``reason`` is the driver's explanation,
    both without the password; a run that stopped on it can be resumed once the database is back.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.reason = reason
        DatabaseError.__init__(self, address, f"cannot coordinate limits and budgets through the PostgreSQL "
                                              f"database at {address}: {reason}; no paid call is made without "
                                              "it (the run can be resumed once it is back)")


class SearchFailedError(AggregatorError):
    """Every provider of the run failed; ``outcomes`` holds each one's reason."""

    def __init__(self, outcomes: Sequence[ProviderOutcome]) -> None:
        self.outcomes = list(outcomes)
        reasons = "; ".join(f"{o.provider}: {o.error.message if o.error else o.status}" for o in outcomes)
        super().__init__(f"every provider failed ({reasons})")
