"""Sandbox emulator of Orbit's developer Deep Search API, ``https://api.orbitsearch.com`` (contract
§1-§5, §7-§9; design §4).

Routes (all need ``Authorization: Bearer <key>``, §1):

- ``POST /v2/developer/deep-search`` (scope ``search:read``) -- strict-allowlist validation
  (§3.1, :mod:`.request`), ``requestId`` idempotency (§3.4), credits, a new run (202).
- ``GET /v2/developer/deep-search/{requestId}`` (``search:read``, free) -- the run's flat status
  document (§4; lifecycle in :mod:`.runs`).
- ``GET /v2/developer/profiles/{id}`` (``profile:read``, 1 credit) -- a profile created by runs
  (§5; rendering in :mod:`.profiles`).

Order of checks (INF §3.1): auth (401/403) -> rate limit (429) -> validation (400) ->
idempotency (409) -> credits (402) -> start. Every error is the §2 envelope
(:func:`.http.envelope`), injected faults included.

Keys (§1). The sandbox key registry hands out ``sandbox-orbit-key-<org>``; those keys (and any
key registered with the registry) are accepted with ``default_key_scopes`` (both scopes), since
the shared registry fixes the key format. :meth:`OrbitEmulator.create_key` mints documented-format
keys ``sk_orb_<32 hex>`` with any scopes (e.g. only ``profile:read``). Any other bearer token is
403 ``invalid_api_key``; no header (or an empty bearer) is 401 ``missing_api_key``.

Runs are scoped per API key (INF §1: the legacy rule; another key's ``requestId`` is a 404 and
its own namespace for idempotency); credits per org (the key's org in the registry). Rate limits
are token buckets per key: start (SEED 5/s burst 25), status (UNK, INF 10/s burst 20) and
profile read (INF 50/s burst 50), each separate. 429s never charge and are counted in stats.

Stats counters beyond the shared ones: ``jobs_started``, ``credits_charged``,
``idempotent_replays``, ``profile_reads``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from aggregator.log import get_logger
from providers.orbit.emulator.handlers import KEY, ORG, ROUTES, add_routes
from providers.orbit.emulator.http import PROFILE_READ, SEARCH_READ, EmulatorSettings, api_error, error_body
from providers.orbit.emulator.index import PeopleIndex
from providers.orbit.emulator.runs import Level, Run, Timeline
from providers.sandbox.context import SandboxContext
from providers.sandbox.entities import PersonEntity
from providers.sandbox.ratelimit import TokenBucket, retry_after_header
from providers.sandbox.server import Handler, new_app, route_key

__all__ = ["OrbitEmulator", "create_emulator"]

log = get_logger(__name__)


def create_emulator(ctx: SandboxContext, settings: Mapping[str, Any]) -> OrbitEmulator:
    """Entry point used by the sandbox runner (its spec's ``emulator``)."""
    return OrbitEmulator(ctx, EmulatorSettings.from_mapping(settings))


class OrbitEmulator:
    """State and HTTP application of the emulator.

    Attributes:
        app: the aiohttp application.
        settings: effective settings.
        index: the people Orbit covers, by every identity signal.
        runs: every run by ``(api_key, request_id)``.
        refunded: immediately completed ``profileId`` requests, ``(api_key, request_id)`` ->
            ``(fingerprint, profile_id)`` (§3.4: their ``requestId`` is refunded).
    """

    def __init__(self, ctx: SandboxContext, settings: EmulatorSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.index = PeopleIndex(ctx.world)
        self.runs: dict[tuple[str, str], Run] = {}
        self.refunded: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.paid_reads: dict[tuple[int, str], str] = {}  # (org, Idempotency-Key) -> profile id read
        self._person_runs: dict[str, list[Run]] = {}
        self._balances: dict[int, int] = {}
        self._scoped_keys: dict[str, tuple[int, frozenset[str]]] = {}
        self.buckets = {
            "start": TokenBucket(ctx.clock, rate=settings.start_rate_per_s, burst=settings.start_burst),
            "status": TokenBucket(ctx.clock, rate=settings.status_rate_per_s, burst=settings.status_burst),
            "profile": TokenBucket(ctx.clock, rate=settings.profile_rate_per_s, burst=settings.profile_burst),
        }
        for counter in ("idempotent_replays", "profile_reads"):
            ctx.stats.declare(counter)
        self.app = new_app(ctx, middlewares=[self._auth_middleware()], error_body=error_body)
        add_routes(self)
        ctx.stats.track_jobs(self._runs_in_flight)  # /_sandbox/stats peak_jobs_in_flight

    def _runs_in_flight(self) -> int:
        """Deep Search runs of every key that have not completed or failed now."""
        now = self.now()
        return sum(1 for r in self.runs.values() if r.status(now) not in ("completed", "failed"))

    # -- test hooks ---------------------------------------------------------------------------

    def list_runs(self, org: int | None = None) -> list[Run]:
        """Runs in start order, optionally only ``org``'s."""
        return [r for r in self.runs.values() if org is None or r.org == org]

    def run(self, request_id: str) -> Run:
        """The run with ``request_id`` (any key; the first started); KeyError if unknown."""
        for run in self.runs.values():
            if run.request_id == request_id:
                return run
        raise KeyError(request_id)

    def force_complete(self, request_id: str) -> None:
        """Move run ``request_id`` to its end now (``completed``, or ``failed`` if destined to)."""
        self.run(request_id).force_end()

    def balance(self, org: int) -> int:
        """Credits ``org`` has left (``initial_credits`` minus what was charged)."""
        return self._balances.get(org, self.settings.initial_credits)

    def set_balance(self, org: int, credits: int) -> None:
        """Set ``org``'s balance (402 tests)."""
        self._balances[org] = credits

    def create_key(self, org: int = 1, scopes: Iterable[str] = (SEARCH_READ, PROFILE_READ)) -> str:
        """Mint a documented-format key ``sk_orb_<32 hex>`` of ``org`` with exactly ``scopes``
        (e.g. ``("profile:read",)`` for a key that cannot start runs)."""
        key = "sk_orb_" + self.ctx.new_uuid().replace("-", "")
        self._scoped_keys[key] = (org, frozenset(scopes))
        self.ctx.keys.register(self.ctx.provider, key, org)
        return key

    def profile_id(self, person: PersonEntity) -> str:
        """The canonical Orbit profile id of a world person (stable, ``orb_<12 hex>``)."""
        return self.index.profile_id(person)

    def profile_level(self, person: PersonEntity) -> Level:
        """How much of ``person``'s profile exists now (NONE: not readable)."""
        now = self.now()
        runs = self._person_runs.get(person.true_id, ())
        return max((run.level_for(person.true_id, now) for run in runs), default=Level.NONE)

    def verified(self, person: PersonEntity) -> bool:
        """Whether a single-profile run has corroborated ``person`` (candidates are unverified)."""
        now = self.now()
        runs = self._person_runs.get(person.true_id, ())
        return any(not r.discovery and r.level_for(person.true_id, now) > Level.NONE for r in runs)

    # -- state used by the handlers -----------------------------------------------------------

    def now(self) -> float:
        return self.ctx.clock.monotonic()

    def timeline(self) -> Timeline:
        s = self.settings
        return Timeline(s.partial_s, s.full_s, s.identity_check_s, s.sources_s, s.clustering_s,
                        s.dispatch_s, s.candidate_interval_s)  # fmt: skip

    def add_run(self, run: Run) -> None:
        self.runs[(run.api_key, run.request_id)] = run
        people = [run.person] if run.person else [p for p, _ in run.candidates]
        for person in people:
            self._person_runs.setdefault(person.true_id, []).append(run)

    def reserve(self, org: int, cost: int) -> None:
        """402 ``developer_api_credits_insufficient`` unless ``org`` can pay ``cost`` (§3.4)."""
        remaining = self.balance(org)
        if remaining < cost:
            raise api_error(402, "developer_api_credits_insufficient",
                            "Developer API credits are insufficient for this request",
                            requiredCredits=cost, remainingCredits=remaining)  # fmt: skip

    def charge(self, org: int, cost: int) -> None:
        """Debit ``cost`` credits (stats ``credits_charged``)."""
        if cost > 0:
            self._balances[org] = self.balance(org) - cost
            self.ctx.stats.add("credits_charged", cost)

    # -- auth and limits ----------------------------------------------------------------------

    def _principal(self, request: web.Request) -> tuple[str, int, frozenset[str]]:
        header = request.headers.get("Authorization", "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if not header or (scheme.lower() == "bearer" and not token):
            raise api_error(401, "missing_api_key",
                            "An API key is required: Authorization: Bearer sk_orb_...")
        if scheme.lower() == "bearer" and token in self._scoped_keys:
            org, scopes = self._scoped_keys[token]
            return token, org, scopes
        org_id = self.ctx.keys.org_for(self.ctx.provider, token) if scheme.lower() == "bearer" else None
        if org_id is None:
            raise api_error(403, "invalid_api_key", "The API key is invalid, revoked or expired.")
        return token, org_id, frozenset(self.settings.default_key_scopes)

    def _auth_middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/_"):
                return await handler(request)
            routing_error = getattr(request.match_info, "http_exception", None)
            if isinstance(routing_error, web.HTTPException):
                raise api_error(routing_error.status, "not_found" if routing_error.status == 404
                                else "method_not_allowed", routing_error.reason)  # fmt: skip
            scope, bucket = ROUTES[route_key(request)]
            key, org, scopes = self._principal(request)
            if scope not in scopes:
                raise api_error(403, "missing_api_key_scope", f"This API key lacks the {scope} scope.")
            self._check_rate(request, bucket, key)
            request[KEY], request[ORG] = key, org
            return await handler(request)

        return middleware

    def _check_rate(self, request: web.Request, bucket: str, key: str) -> None:
        delay_s = self.buckets[bucket].acquire(key)
        if delay_s is None:
            return
        self.ctx.stats.count_rate_limited(route_key(request))
        log.info("orbit.rate_limited", endpoint=route_key(request), retry_after_s=delay_s)
        raise api_error(429, "developer_api_key_rate_limited",
                        f"Rate limit exceeded for this API key; retry after "
                        f"{retry_after_header(delay_s)} seconds.", retry_after_s=delay_s)  # fmt: skip
