"""Settings and HTTP helpers of the Orbit emulator: error envelope, body reading (contract §1-§3).

Every error, on every route, is the documented envelope (contract §2)::

    {"status": "failed", "error": {"code": "...", "message": "...", ...extra}}

where ``extra`` is only ever ``requiredCredits``/``remainingCredits`` (402, §3.4, §8).
:class:`EmulatorSettings` holds every tunable; DOC/SEED values are the published contract, INF
values are our best guess of the real API made configurable (override through
``SandboxConfig.settings["orbit"]``). Durations are virtual seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from providers.sandbox.ratelimit import retry_after_header
from providers.sandbox.server import Reply, json_response

__all__ = [
    "CREDITS_HEADER",
    "PROFILE_READ",
    "SEARCH_READ",
    "EmulatorSettings",
    "api_error",
    "envelope",
    "error_body",
    "ok",
    "read_body",
]

SEARCH_READ = "search:read"  # DOC §1: deep-search start + status
PROFILE_READ = "profile:read"  # DOC §1, §5: profile read
CREDITS_HEADER = "X-Developer-API-Credits-Remaining"  # DOC §8

_FAULT_CODES = {404: "not_found", 405: "method_not_allowed",  # INF: unknown route / wrong method
                429: "developer_api_key_rate_limited", 500: "internal_error",
                502: "developer_deep_search_request_failed",
                503: "developer_deep_search_unavailable", 504: "gateway_timeout"}  # fmt: skip


@dataclass(frozen=True)
class EmulatorSettings:
    """Tunables of the Orbit emulator (virtual seconds for every ``*_s``, credits as ints)."""

    credits_per_run: int = 10  # DOC §3.4/§8: 10 credits per started Deep Search run
    credits_per_profile_read: int = 1  # DOC §5/§8
    initial_credits: int = 10_000  # INF: per-org balance at sandbox start (monthly grant UNK)
    start_rate_per_s: float = 5.0  # SEED §4.6: start bucket 5 req/s per key ...
    start_burst: int = 25  # ... burst 25
    status_rate_per_s: float = 10.0  # UNK §4.6: the status bucket's numbers are unpublished
    status_burst: int = 20
    profile_rate_per_s: float = 50.0  # §5 contradiction: live "50 rps" wins over repo "120/60 s"
    profile_burst: int = 50
    partial_s: float = 8.0  # INF §3.2: "partial is seconds" (3P) -> partial profile ready
    full_s: float = 60.0  # INF §3.2: full profile done (3P real runs take 25-30 min)
    identity_check_s: float = 5.0  # INF §4.4: running phase before identity_not_corroborated
    sources_s: float = 4.0  # INF §4.3: candidate_discovery "finding_sources" phase
    clustering_s: float = 4.0  # INF §4.3: "clustering_sources" phase (candidate_count grows)
    dispatch_s: float = 1.0  # INF §4.3: "dispatching_candidates" phase
    candidate_interval_s: float = 3.0  # INF §4.3: one candidate profile persisted every 3 s
    max_candidates: int = 50  # INF §4.3: candidates generated per run (the rest are "skipped")
    max_clusters: int = 200  # INF §4.3: clusters discovered per run at most
    # INF §11: candidate_discovery skips clusters matching none of the semantic phrases when some
    # cluster matches one (False: every cluster passing the structured clauses is generated, ranked)
    discovery_skip_unmatched: bool = True
    default_key_scopes: tuple[str, ...] = (SEARCH_READ, PROFILE_READ)  # INF §1: sandbox keys

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any]) -> EmulatorSettings:
        """Defaults with ``overrides`` applied; unknown names or bad values raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown orbit emulator settings: {unknown}")
        values = dict(overrides)
        scopes = values.get("default_key_scopes")
        if scopes is not None:
            values["default_key_scopes"] = (scopes,) if isinstance(scopes, str) else tuple(scopes)
        settings = cls(**values)
        if not 0 < settings.partial_s <= settings.full_s:
            raise ValueError("need 0 < partial_s <= full_s")
        if settings.candidate_interval_s <= 0 or settings.max_candidates < 0:
            raise ValueError("need candidate_interval_s > 0 and max_candidates >= 0")
        return settings


def envelope(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The error document of contract §2: ``{"status": "failed", "error": {code, message, ...}}``."""
    return {"status": "failed", "error": {"code": code, "message": message, **extra}}


def api_error(
    status: int, code: str, message: str, *, retry_after_s: float | None = None, **extra: Any
) -> Reply:
    """An error :class:`Reply` in the envelope; ``Retry-After`` (whole seconds) when given."""
    headers = None
    if retry_after_s is not None:
        headers = {"Retry-After": retry_after_header(retry_after_s)}
    return Reply.json(envelope(code, message, **extra), status=status, headers=headers)


def error_body(status: int, message: str) -> Any:
    """Envelope of an injected HTTP fault or a route the API does not have (``new_app(error_body=...)``):
    429 carries the documented rate-limit code, 502/503 the documented Deep Search codes (§3.5);
    an unknown path is 404 ``not_found`` and a wrong method 405 ``method_not_allowed`` (INF)."""
    return envelope(_FAULT_CODES.get(status, "internal_error"), message)


def ok(doc: Any, *, status: int = 200, credits: int | None = None) -> web.Response:
    """A JSON success response; ``credits`` sets ``X-Developer-API-Credits-Remaining`` (§8)."""
    headers = None if credits is None else {CREDITS_HEADER: str(credits)}
    return json_response(doc, status=status, headers=headers)


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body; 400 ``developer_deep_search_invalid_request`` otherwise (§3.1)."""
    raw = await request.read()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise api_error(400, "developer_deep_search_invalid_request",
                        "The request body must be a JSON object.") from exc
    if not isinstance(doc, dict):
        raise api_error(400, "developer_deep_search_invalid_request",
                        "The request body must be a JSON object.")
    return doc
