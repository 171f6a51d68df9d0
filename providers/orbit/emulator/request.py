"""Validation of ``POST /v2/developer/deep-search`` bodies (contract §3.1, SEED "Body parameters").

The body is a strict allowlist. Checks run in this order; the first failure answers 400:

1. any other top-level key -> ``developer_deep_search_field_unsupported``; the message names
   the field and, for legacy fields, its replacement (SEED migration table; ``phone`` ->
   ``phoneNumber`` per SEED "Send the field as phoneNumber, not phone");
2. per field: ``requestId`` (non-empty string, at most 255 chars: INF), ``runShape`` (enum),
   ``profileId``, ``email``, ``phoneNumber`` (7-15 digits), ``linkedinUrl`` (a
   ``linkedin.com/in/`` profile), ``urls``/``usernames`` (string arrays, else
   ``developer_deep_search_field_invalid``; each URL http(s) with a host, else ``url_invalid``),
   ``structuredIntent`` (:mod:`.intent`);
3. ``developer_deep_search_input_required`` when no identity signal is present;
4. ``candidate_discovery`` needs ``structuredIntent`` and rejects ``profileId``
   (``developer_deep_search_run_shape_invalid``; DOC for ``profileId``, INF for the missing intent).

``null`` values count as omitted (INF). The raw body is kept as the idempotency
fingerprint: canonical JSON with sorted keys (INF §3.4).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from providers.orbit.emulator.http import api_error
from providers.orbit.emulator.index import linkedin_slug, phone_digits, split_url
from providers.orbit.emulator.intent import validate_intent
from providers.sandbox.server import Reply

__all__ = ["ALLOWED_FIELDS", "LEGACY_REPLACEMENTS", "RUN_SHAPES", "StartRequest", "parse_start"]

RUN_SHAPES = ("partial_only", "partial_plus_full", "full_generation_only", "candidate_discovery")
ALLOWED_FIELDS = ("requestId", "runShape", "profileId", "structuredIntent", "email", "phoneNumber",
                  "linkedinUrl", "urls", "usernames")  # fmt: skip
SIGNALS = ("profileId", "structuredIntent", "email", "phoneNumber", "linkedinUrl", "urls", "usernames")
LEGACY_REPLACEMENTS: dict[str, str] = {
    "mode": 'use runShape instead: omit it for profile generation (the default), or send '
            'runShape "candidate_discovery"',
    "partialProfile": 'use runShape "partial_only" (the default) or "partial_plus_full"',
    "dry_run": "it was removed; runs are always real",
    "options": "it was removed",
    "profile_id": "use profileId",
    "orbit_id": "use profileId",
    "phone": "use phoneNumber",
}
"""Legacy or misspelt top-level fields and the replacement their error message names (SEED)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]+$")
_MAX_REQUEST_ID = 255


@dataclass(frozen=True)
class StartRequest:
    """A validated start body. ``run_shape`` is None when omitted (the default depends on the
    signals: ``profileId`` alone means full generation, SEED "Regenerate")."""

    request_id: str | None
    run_shape: str | None
    profile_id: str | None
    structured_intent: dict[str, Any] | None
    email: str | None
    phone_number: str | None
    linkedin_url: str | None
    urls: tuple[str, ...]
    usernames: tuple[str, ...]
    fingerprint: bytes

    @property
    def effective_shape(self) -> str:
        """The run shape that runs: explicit, else full generation for a lone ``profileId``,
        else ``partial_only`` (SEED default)."""
        if self.run_shape is not None:
            return self.run_shape
        others = (self.structured_intent, self.email, self.phone_number, self.linkedin_url,
                  self.urls, self.usernames)  # fmt: skip
        if self.profile_id is not None and not any(others):
            return "full_generation_only"
        return "partial_only"


def _bad(field: str, what: str) -> Reply:
    code = {"requestId": "request_id", "runShape": "run_shape", "profileId": "profile_id",
            "email": "email", "phoneNumber": "phone", "linkedinUrl": "linkedin"}[field]  # fmt: skip
    return api_error(400, f"developer_deep_search_{code}_invalid", f"{field} {what}.")


def _string(body: dict[str, Any], field: str, check: Callable[[str], bool], what: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or not check(value):
        raise _bad(field, what)
    return value


def _strings(body: dict[str, Any], field: str) -> tuple[str, ...]:
    value = body.get(field)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise api_error(400, "developer_deep_search_field_invalid",
                        f"{field} must be an array of non-empty strings.")
    return tuple(value)


def _check_fields(body: dict[str, Any]) -> None:
    for field in body:
        if field in ALLOWED_FIELDS:
            continue
        hint = LEGACY_REPLACEMENTS.get(field)
        message = f"Field {field!r} is not supported" + (f": {hint}." if hint else
                  f"; allowed fields: {', '.join(ALLOWED_FIELDS)}.")  # fmt: skip
        raise api_error(400, "developer_deep_search_field_unsupported", message)


def _phone_ok(value: str) -> bool:
    return bool(_PHONE_CHARS.match(value)) and 7 <= len(phone_digits(value)) <= 15


def parse_start(body: dict[str, Any]) -> StartRequest:
    """Validate a start body (order in the module docstring); raise a 400 :class:`Reply`."""
    _check_fields(body)
    request = StartRequest(
        request_id=_string(body, "requestId", lambda v: len(v) <= _MAX_REQUEST_ID,
                           f"must be a non-empty string of at most {_MAX_REQUEST_ID} characters"),
        run_shape=_string(body, "runShape", lambda v: v in RUN_SHAPES,
                          f"must be one of {', '.join(RUN_SHAPES)}"),
        profile_id=_string(body, "profileId", lambda v: True, "must be a non-empty string"),
        email=_string(body, "email", lambda v: bool(_EMAIL.match(v.strip())),
                      "must be a valid email address"),
        phone_number=_string(body, "phoneNumber", _phone_ok, "must be a valid phone number"),
        linkedin_url=_string(body, "linkedinUrl", lambda v: linkedin_slug(v) is not None,
                             "must be a LinkedIn profile URL (https://www.linkedin.com/in/...)"),
        urls=_strings(body, "urls"), usernames=_strings(body, "usernames"),
        structured_intent=None if body.get("structuredIntent") is None
        else validate_intent(body["structuredIntent"]),
        fingerprint=orjson.dumps(body, option=orjson.OPT_SORT_KEYS),
    )  # fmt: skip
    _check_urls(request.urls)
    _check_cross_fields(request)
    return request


def _check_urls(urls: tuple[str, ...]) -> None:
    for url in urls:
        if "://" not in url or split_url(url) is None:
            raise api_error(400, "developer_deep_search_url_invalid",
                            f"urls entry {url!r} is not a public http(s) URL.")


def _check_cross_fields(request: StartRequest) -> None:
    values = (request.profile_id, request.structured_intent, request.email, request.phone_number,
              request.linkedin_url, request.urls, request.usernames)  # fmt: skip
    if not any(values):
        raise api_error(400, "developer_deep_search_input_required",
                        f"At least one identity signal is required: {', '.join(SIGNALS)}.")
    if request.run_shape != "candidate_discovery":
        return
    if request.profile_id is not None:
        raise api_error(400, "developer_deep_search_run_shape_invalid",
                        "runShape candidate_discovery cannot be used with profileId.")
    if request.structured_intent is None:
        raise api_error(400, "developer_deep_search_run_shape_invalid",
                        "runShape candidate_discovery requires structuredIntent.")
