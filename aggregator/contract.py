"""The provider contract: every provider job is submit -> poll -> fetch, with checkpoints.

An adapter declares what it can do (:class:`Capabilities`), what the provider allows
(:class:`Limits`, :class:`PollPolicy`) and implements three coroutines:

- ``submit(request, idempotency_key) -> JobRef`` — one logical start. The core mints the key once,
  records it in the job store *before* the call and the HTTP client resends the very same body
  (so the same key) on every retry.
- ``poll(job) -> Pending | Ready | Failed`` — a typed state. Unknown provider statuses must raise
  :class:`~aggregator.errors.ProviderProtocolError`, never loop silently.
- ``fetch(job, checkpoint, limit) -> Page`` — one page of hits and the checkpoint to continue from
  (a cursor, an offset, or the set of ids already read). Called while ``Pending`` when
  ``capabilities.streaming`` is true.

Two optional steps:

- ``find_submitted(request, idempotency_key, since)`` — for providers without an idempotency key:
  after a submit whose outcome is unknown (connection reset, timeout, 5xx, garbled body), find the
  job that submit created, so the core adopts it instead of starting (and paying for) a second one.
- ``extend(job, additional)`` — ask a finished job for more results (Extruct's resume), when
  ``capabilities.extendable``; returns the updated job or None when it cannot give more.

Adapters do I/O only through the :class:`ProviderClient` the core injects; it applies rate limits,
concurrency caps, retries, timeouts and logging.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, cast, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aggregator.clock import Clock
from aggregator.errors import ConfigError, ProviderProtocolError
from aggregator.models import FieldValues, FilterCapabilities, Hit, Mode, SearchRequest

if TYPE_CHECKING:
    from aggregator.config import ProviderSettings

__all__ = [
    "Capabilities",
    "Checkpoint",
    "CostModel",
    "Failed",
    "FilterSearchProvider",
    "JobRef",
    "JobState",
    "Limits",
    "Page",
    "Pending",
    "PollPolicy",
    "ProviderAdapter",
    "ProviderClient",
    "RateLimitRow",
    "RateLimitSpec",
    "Ready",
    "Response",
    "parse_payload",
    "specs_from_settings",
]

M = TypeVar("M")
S = TypeVar("S", int, float, str)
_TYPE_NAMES: dict[type, str] = {int: "an integer", float: "a number", str: "a string"}

Checkpoint = Mapping[str, Any]
"""JSON-serializable continuation state owned by the adapter (cursor, offset, ids read)."""


@dataclass(frozen=True, slots=True)
class CostModel:
    """Credits a provider charges. ``known`` is False where the provider has not published prices."""

    per_start: float = 0.0
    per_result: float = 0.0
    per_read: float = 0.0
    known: bool = True


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter supports."""

    modes: frozenset[Mode]
    streaming: bool = False  # results can be read while the job is still running
    extendable: bool = False  # a finished job can be asked for more results (Extruct resume)
    cancellable: bool = False
    idempotent_submit: bool = False  # the provider dedupes submits by our idempotency key
    lookup: bool = False  # can look up one person from identity signals (SearchRequest.identity)
    filter_search: bool = False  # can run SearchRequest.simple_filters / filters over an index
    cost: CostModel = field(default_factory=CostModel)


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """A documented rate limit applied to a set of endpoints.

    ``kind="sliding_window"``: at most ``limit`` requests in any ``window_s`` seconds.
    ``kind="token_bucket"``: ``limit`` tokens per ``window_s`` refill, ``burst`` capacity.
    ``endpoints`` are ``"METHOD /template"`` keys, or ``"*"`` for every endpoint of the provider.
    """

    name: str
    limit: int
    window_s: float
    endpoints: tuple[str, ...] = ("*",)
    kind: Literal["sliding_window", "token_bucket"] = "sliding_window"
    burst: int | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Rate limits, per-endpoint concurrency caps and the provider's cap on concurrent jobs."""

    rate_limits: tuple[RateLimitSpec, ...] = ()
    concurrency: Mapping[str, int] = field(default_factory=dict)  # endpoint -> max in flight
    max_concurrent_jobs: int | None = None  # e.g. Sixtyfour: 5 deep searches per org


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often to poll: start at ``interval_s``, multiply by ``backoff`` up to ``max_interval_s``.

    A server hint (``Pending.poll_after_s``) replaces the computed interval, clamped to
    ``[min_interval_s, max_interval_s]``. ``jitter_s`` adds up to that much random delay.
    """

    interval_s: float = 10.0
    max_interval_s: float = 15.0
    min_interval_s: float = 1.0
    backoff: float = 1.25
    jitter_s: float = 0.0


@dataclass(frozen=True, slots=True)
class JobRef:
    """A started provider job: enough to poll, fetch and resume it later.

    ``extra`` is the adapter's; three keys are read by the core: ``credits`` (what this submit
    cost, when it differs from ``cost.per_start``, e.g. 0 for an idempotent replay),
    ``credits_remaining`` (the balance the provider reported) and ``ready`` (true when results
    can be fetched at once, e.g. a synchronous filter search: the core does not poll).
    """

    provider: str
    job_id: str
    idempotency_key: str
    mode: Mode
    submitted_at: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pending:
    """Still running. ``progress`` is free text; ``results_so_far`` when the provider says."""

    phase: str = "running"
    progress: str | None = None
    results_so_far: int | None = None
    poll_after_s: float | None = None  # server hint


@dataclass(frozen=True, slots=True)
class Ready:
    """Finished; results can be fetched. ``job`` may carry ids learned at completion."""

    total_results: int | None = None
    job: JobRef | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The provider says the job failed."""

    reason: str


JobState = Pending | Ready | Failed


@dataclass(frozen=True, slots=True)
class Page:
    """One fetch step: new hits, where to continue, and whether the results are exhausted."""

    hits: tuple[Hit, ...]
    checkpoint: Checkpoint
    done: bool
    credits: float = 0.0
    credits_remaining: float | None = None  # the provider's balance after this page, if it says
    reads: int = 1  # provider reads this step made (pages, downloads, profiles); 0 = nothing new yet
    excluded: int = 0  # records skipped unread because their id was excluded (the core drops the rest)


@dataclass(frozen=True, slots=True)
class Response:
    """A successful HTTP response as adapters see it. ``data`` is parsed JSON, or text/bytes.

    ``credits_charged`` is what a paid call (``cost=``) was charged after reconciliation with the
    provider's report (see :meth:`aggregator.http.ProviderHTTPClient.request`); None for free calls.
    """

    status: int
    headers: Mapping[str, str]
    data: Any
    credits_charged: float | None = None


@functools.cache
def _type_adapter(model: Any) -> TypeAdapter[Any]:  # one per wire model: building one is costly
    return TypeAdapter(model)


def parse_payload(model: type[M] | TypeAdapter[M], data: Any, *, provider: str, endpoint: str) -> M:
    """Validate a provider's response ``data`` against a wire model (or ``TypeAdapter``).

    Raises:
        ProviderProtocolError: naming provider, endpoint and the first location that does not fit.
    """
    adapter: TypeAdapter[M] = model if isinstance(model, TypeAdapter) else _type_adapter(cast(Hashable, model))
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ProviderProtocolError(f"unexpected response shape at {where}: {first['msg']}",
                                    provider=provider, endpoint=endpoint) from exc


class RateLimitRow(BaseModel):
    """One ``rate_limits`` row of a provider's settings, as written in ``config/default.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    limit: int = Field(ge=1, description="Requests per window (sliding) or tokens per window (bucket).")
    window_s: float = Field(gt=0, allow_inf_nan=False)
    endpoints: tuple[str, ...] = Field(("*",), min_length=1)
    kind: Literal["sliding_window", "token_bucket"] = "sliding_window"
    burst: int | None = Field(None, ge=1, description="Token bucket capacity.")


def specs_from_settings(rows: Iterable[Mapping[str, object]], where: str = "rate_limits") -> tuple[RateLimitSpec, ...]:
    """``rate_limits`` rows of ``config/default.toml`` as :class:`RateLimitSpec` values.

    Raises:
        ConfigError: a row that is not a table of valid values, named ``<where>[i].<key>``
            (``providers.orbit.rate_limits[0].limit``).
    """
    specs = []
    for i, row in enumerate(rows):
        try:
            valid = RateLimitRow.model_validate(row)
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, prefix=f"{where}[{i}]") from exc
        specs.append(RateLimitSpec(name=valid.name, limit=valid.limit, window_s=valid.window_s,
                                   endpoints=valid.endpoints, kind=valid.kind, burst=valid.burst))
    return tuple(specs)


class ProviderClient(Protocol):
    """The I/O handle the core injects into an adapter (see :class:`aggregator.http.ProviderHTTPClient`)."""

    provider: str
    base_url: str
    clock: Clock

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
    ) -> Response: ...

    async def get_external(self, url: str, *, endpoint: str) -> Response: ...

    async def affordable(self, wanted: int, unit_cost: float) -> int:
        """How many of ``wanted`` units of ``unit_cost`` credits every applying budget still covers;
        raises BudgetExceededError when not one is."""
        ...


@runtime_checkable
class FilterSearchProvider(Protocol):
    """An adapter with ``capabilities.filter_search`` also offers these two metadata reads."""

    async def filter_capabilities(self, mode: Mode = "company") -> FilterCapabilities: ...

    async def filter_values(self, field: str, *, mode: Mode = "company", top_k: int = 25,
                            simple_filters: dict[str, Any] | None = None,
                            filters: dict[str, Any] | None = None) -> FieldValues: ...


class ProviderAdapter(ABC):
    """Base class of provider adapters. Subclasses set ``name`` and implement the three steps."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    options_model: ClassVar[type[BaseModel] | None] = None
    """The provider-only inputs it accepts in ``SearchRequest.options[name]`` (None: none)."""

    def __init__(self, client: ProviderClient, settings: ProviderSettings) -> None:
        self.client = client
        self.settings = settings

    @property
    def cost(self) -> CostModel:
        """The cost model in force (settings may refine the class's declared one)."""
        return self.capabilities.cost

    def setting(self, name: str, default: S, *, minimum: float | None = None, maximum: float | None = None) -> S:
        """The adapter-specific setting ``name`` (an extra key of ``[providers.<provider>]``).

        It must have ``default``'s type (an int is accepted for a float; a bool never for a number)
        and lie within ``[minimum, maximum]``.

        Raises:
            ConfigError: naming ``providers.<provider>.<name>``, the expected type or range and the value.
        """
        value: Any = self.settings.option(name, default)
        where = f"providers.{self.name}.{name}"
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, type(default)):
            raise ConfigError(where, f"must be {_TYPE_NAMES[type(default)]}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(where, f"must be a finite number, got {value!r}")
        number = float(value) if isinstance(value, int | float) else None
        if number is not None and ((minimum is not None and number < minimum)
                                   or (maximum is not None and number > maximum)):
            bounds = (f"between {minimum:g} and {maximum:g}" if minimum is not None and maximum is not None
                      else f"at least {minimum:g}" if minimum is not None else f"at most {maximum:g}")
            raise ConfigError(where, f"must be {bounds}, got {value!r}")
        checked: S = value
        return checked

    @staticmethod
    @abstractmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        """The headers that carry ``api_key`` (e.g. ``x-api-key`` or ``Authorization: Bearer``)."""

    @classmethod
    def limits_from(cls, settings: ProviderSettings) -> Limits:
        """The provider's limits: the ``rate_limits`` rows and ``max_concurrent_jobs`` of its settings
        (``config/default.toml`` holds the documented values)."""
        return Limits(rate_limits=specs_from_settings(settings.rate_limits, f"providers.{cls.name}.rate_limits"),
                      max_concurrent_jobs=settings.max_concurrent_jobs)

    @classmethod
    @abstractmethod
    def poll_policy_from(cls, settings: ProviderSettings) -> PollPolicy:
        """The poll cadence, from documented defaults overridden by settings."""

    def validate(self, request: SearchRequest) -> None:  # noqa: B027 - optional hook
        """Reject what this provider cannot run, before any call. Raises ConfigError.

        Called once per run, after :meth:`options` checked the request's options for this provider.
        """

    def unsupported(self, request: SearchRequest) -> ConfigError | None:
        """Why this provider cannot do everything a valid ``request`` asks (None: it can), e.g. more
        values of a structured field than its request format can express. No I/O.

        The core refuses the request with this error when the user named the provider, and otherwise
        skips the provider with its message as the outcome's note (before any call either way).
        """
        return None

    def sent_exclusions(self, request: SearchRequest) -> tuple[str, ...]:
        """The request's exclusions this provider's request carries, for it to apply itself; ``()``
        when it takes none. The core checks every returned record against all of them anyway."""
        return ()

    def options(self, request: SearchRequest) -> Any:
        """This provider's options of ``request`` (``request.options[name]``), validated with
        :attr:`options_model` (its defaults when none are given).

        Raises:
            ConfigError: naming ``options.<provider>.<field>``; or ``options.<provider>`` when the
                provider takes no options.
        """
        given = request.options.get(self.name)
        if self.options_model is None:
            if given:
                raise ConfigError(f"options.{self.name}", f"{self.name} takes no options")
            return None
        try:
            return self.options_model.model_validate(given or {})
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, prefix=f"options.{self.name}") from exc

    @abstractmethod
    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        """Start one job. Raises ProviderError subclasses."""

    @abstractmethod
    async def poll(self, job: JobRef) -> JobState:
        """Read the job's state once. Raises ProviderError subclasses."""

    @abstractmethod
    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        """Read the next page after ``checkpoint`` (None = from the start).

        ``limit`` is how many more records the run wants. Adapters whose reads are paid per
        record (Orbit profile reads) must not read more; free pages may ignore it.
        """

    async def prepare(self, request: SearchRequest) -> None:  # noqa: B027 - optional hook
        """Checks that need the provider's metadata (e.g. filter fields), before any paid call.

        Called by the core for every planned provider before any job starts. Raises ConfigError.
        """

    def describe(self, request: SearchRequest) -> Mapping[str, Any]:
        """What a submit of ``request`` would send (the CLI's ``--explain``); no I/O."""
        return {}

    async def find_submitted(
        self, request: SearchRequest, idempotency_key: str, since: datetime
    ) -> JobRef | None:
        """The job a submit of ``request`` created at or after ``since``, if the provider shows one.

        Only called for providers whose submit is not idempotent, after an ambiguous failure.
        The default finds nothing (the core then submits again).
        """
        return None

    async def extend(self, job: JobRef, additional: int) -> JobRef | None:
        """Ask a finished job for up to ``additional`` more results; None if it cannot."""
        return None
