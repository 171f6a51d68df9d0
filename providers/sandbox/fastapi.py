"""FastAPI-style request handling shared by the emulators of FastAPI services (Sixtyfour, Extruct).

Both providers run FastAPI (contract sixtyfour §0, extruct §1): a malformed or missing JSON body and
every validation failure answer **422** with FastAPI's ``{"detail": [{"loc", "msg", "type", "input",
"ctx"?}]}`` array. Emulators validate request bodies with pydantic models and these helpers.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from providers.sandbox.server import Reply

__all__ = ["read_json", "validate", "validation_detail"]

_M = TypeVar("_M", bound=BaseModel)


def validation_detail(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    """FastAPI's 422 ``detail`` array for ``exc`` (``where`` is ``"body"`` or ``"query"``)."""
    detail: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "loc": [where, *err["loc"]],
            "msg": err["msg"],
            "type": err["type"],
            "input": None if err["type"] == "missing" else _jsonable(err.get("input")),
        }
        if err.get("ctx"):
            item["ctx"] = {k: _jsonable(v) for k, v in err["ctx"].items()}
        detail.append(item)
    return detail


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


async def read_json(request: web.Request, empty: Any = None) -> Any:
    """The parsed JSON body; FastAPI-style 422 for a malformed body, and for an empty one
    unless ``empty`` (the value to use instead) is given."""
    raw = await request.read()
    if not raw.strip():
        if empty is not None:
            return empty
        missing = {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
        raise Reply.json({"detail": [missing]}, status=422)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        item = {"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error",
                "input": {}, "ctx": {"error": exc.msg}}
        raise Reply.json({"detail": [item]}, status=422) from exc


def validate(model: type[_M], data: Any, where: str = "body") -> _M:
    """``model`` validated from ``data`` or a FastAPI-style 422 reply."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Reply.json({"detail": validation_detail(exc, where)}, status=422) from exc
