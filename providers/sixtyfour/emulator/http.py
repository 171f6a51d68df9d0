"""HTTP helpers of the Sixtyfour emulator: FastAPI-style errors and body parsing (contract §0).

Sixtyfour's backend is FastAPI: endpoint errors are ``{"detail": "<string>"}`` and schema
violations (including malformed JSON) are 422 with a ``detail`` array (contract §0, §4.2).
Filter-field-values errors carry a documented ``code`` (§2.2): ``{"detail": "<message>", "code": ...}``
(``detail`` stays a string, as the published schema of every search error says).
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from providers.sandbox.fastapi import read_json, validate
from providers.sandbox.ratelimit import retry_after_header
from providers.sandbox.server import Reply, json_response

__all__ = ["ORG", "code_error", "detail_error", "ok", "read_json", "validate"]

_M = TypeVar("_M", bound=BaseModel)
ORG = web.RequestKey("sixtyfour.org", int)
"""The org id of the request's API key (set by the auth middleware)."""


def detail_error(status: int, detail: str, *, retry_after_s: float | None = None) -> Reply:
    """A ``{"detail": ...}`` error reply, with ``Retry-After`` (whole seconds) when given."""
    headers = None
    if retry_after_s is not None:
        headers = {"Retry-After": retry_after_header(retry_after_s)}
    return Reply.json({"detail": detail}, status=status, headers=headers)


def code_error(status: int, code: str, message: str) -> Reply:
    """A ``{"detail": message, "code": code}`` reply: the documented error codes of
    ``/search/filter-field-values`` (§2.2) with our guess of where they sit (INF: beside the
    string ``detail`` the spec publishes, where clients read a top-level ``code``)."""
    return Reply.json({"detail": message, "code": code}, status=status)


def ok(doc: Any) -> web.Response:
    """A 200 JSON response."""
    return json_response(doc)
