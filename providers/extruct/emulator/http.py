"""HTTP helpers of the Extruct emulator: FastAPI-style errors and body parsing (contract §9).

Extruct's backend is FastAPI (contract §1): endpoint errors are ``{"detail": "<string>"}``
(INF, strong), billing gates carry ``{"detail": {"error": ..., "message": ...}}`` (REPO, §9) and
schema violations, including malformed JSON, are 422 with a ``detail`` array (DOC guide, §4).
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from providers.sandbox.fastapi import read_json, validate
from providers.sandbox.ratelimit import retry_after_header
from providers.sandbox.server import Reply, json_response

__all__ = ["ORG", "billing_error", "detail_error", "ok", "read_json", "unprocessable", "validate"]

_M = TypeVar("_M", bound=BaseModel)
ORG = web.RequestKey("extruct.org", int)
"""The org id of the request's bearer token (set by the auth middleware)."""


def detail_error(
    status: int, detail: str, *, retry_after_s: float | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:  # fmt: skip
    """A ``{"detail": ...}`` error reply, with ``Retry-After`` (whole seconds) when given."""
    all_headers = dict(headers or {})
    if retry_after_s is not None:
        all_headers["Retry-After"] = retry_after_header(retry_after_s)
    return Reply.json({"detail": detail}, status=status, headers=all_headers or None)


def billing_error(error: str, message: str) -> Reply:
    """402 ``{"detail": {"error": error, "message": message}}`` (REPO SKILL, contract §9)."""
    return Reply.json({"detail": {"error": error, "message": message}}, status=402)


def unprocessable(loc: list[str | int], msg: str, value: Any = None) -> Reply:
    """A 422 with one FastAPI-style ``value_error`` item at ``loc``."""
    item = {"loc": loc, "msg": f"Value error, {msg}", "type": "value_error", "input": value}
    return Reply.json({"detail": [item]}, status=422)


def ok(doc: Any) -> web.Response:
    """A 200 JSON response (DOC success code is unstated; INF FastAPI default 200, §4)."""
    return json_response(doc)
