"""Structured logging for the library without configuring anything global.

Events are emitted through structlog when the application has configured it
(``structlog.is_configured()``; the CLI does). Otherwise they go to the standard ``logging``
module under the same logger name, so an application that configured neither sees only
warnings and errors on stderr (``logging``'s last-resort handler) instead of structlog's default,
which prints every event, debug included, to stdout.

Event names follow ``noun.verb``: ``job.submitted``, ``job.polled``, ``retry.scheduled``,
``ratelimit.paused``, ``provider.failed``.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["get_logger"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class _Logger:
    """``log.info("event", key=value)``, routed to structlog or stdlib logging (see module doc)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stdlib = logging.getLogger(name)

    def _emit(self, level: str, event: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if structlog.is_configured():
            method = getattr(structlog.get_logger(self.name), level)
            method(event, **({"exc_info": True} if exc_info else {}), **fields)
            return
        numeric = _LEVELS[level]
        if self._stdlib.isEnabledFor(numeric):
            rendered = " ".join(f"{key}={value!r}" for key, value in fields.items())
            self._stdlib.log(numeric, "%s %s", event, rendered, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, False, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, False, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, False, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, False, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, True, fields)


def get_logger(name: str) -> _Logger:
    """The library's logger for ``name`` (a dotted module name)."""
    return _Logger(name)
