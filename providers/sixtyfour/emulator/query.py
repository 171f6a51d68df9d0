"""Cursor paging of ``POST /search/query`` over a search's results (contract §2.3, §5).

A *flow* starts with a first request (a query source + ``page_size`` + ``max_results`` +
exclusions) and continues with cursor-only requests. The source is a deep search's
``search_id`` or a filter search (:mod:`.search`); fresh searches add page fields
(``parsed_query`` echo, people ``total_available``) through ``Flow.extras``. Semantics (DOC
unless tagged):

- ``cap = min(effective cap, rows found)``; pages walk the first ``cap`` rows ``page_size`` at a
  time. Exclusions are a post-filter: excluded rows are dropped from their page, so a page can be
  short (even empty) while ``has_more`` is true.
- ``total_results`` is CUMULATIVE rows returned so far in the flow; ``total_pages`` appears only
  when ``has_more`` is false; ``max_pages = ceil(cap / page_size)`` (INF);
  ``remaining_results = cap - rows walked`` (INF: equals ``cap - total_results`` without
  exclusions, and reaches 0 on the last page with them).
- Each page mints its own opaque base64url cursor, valid ``cursor_ttl_s`` (1800) after issue.
  Unknown/garbage or expired cursor -> 400; another org's -> 404; a cursor whose request is still
  being processed -> 409.
- INF: re-using a cursor after its request finished re-reads the same page with the same
  ``next_cursor`` (idempotent), so a client can retry a lost page without skipping rows.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.sixtyfour.emulator.rows import Exclusions, Row

__all__ = ["CursorEntry", "CursorError", "CursorStore", "Flow", "Page"]


class CursorError(Exception):
    """A cursor request that must be refused: ``status`` and ``detail`` of the answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Flow:
    """What the first request fixed for the whole cursor flow."""

    org: int
    search_id: str
    rows: tuple[Row, ...]  # the first ``cap`` rows of the search
    page_size: int
    exclusions: Exclusions
    extras: dict[str, Any] = field(default_factory=dict)  # extra fields of every page
    wrap_lists: bool = False  # serve list items as {"element": X} (company rows, §3.1)

    @property
    def cap(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Page:
    """One computed page: rows returned and the position after it."""

    results: tuple[Row, ...]
    end_offset: int
    cumulative: int


@dataclass
class CursorEntry:
    """Server-side state behind one cursor token (the position *before* its page)."""

    token: str
    flow: Flow
    offset: int
    page_number: int
    cumulative: int
    expires_at: float
    in_flight: bool = False
    page: Page | None = None
    next_token: str | None = field(default=None)


def compute_page(flow: Flow, offset: int, cumulative: int) -> Page:
    """Walk ``page_size`` rows from ``offset``, dropping excluded ones."""
    end = min(flow.cap, offset + flow.page_size)
    kept = tuple(r for r in flow.rows[offset:end] if not flow.exclusions.excludes(r))
    return Page(kept, end, cumulative + len(kept))


def page_doc(
    flow: Flow, page: Page, *, page_number: int, next_token: str | None, ttl_s: float,
    duration_ms: int,
) -> dict[str, Any]:
    """The ``FilterSearchResponse`` of one page."""
    has_more = page.end_offset < flow.cap
    doc: dict[str, Any] = {
        "search_id": flow.search_id,
        "next_cursor": next_token if has_more else None,
        "cursor_expires_in_seconds": int(ttl_s),
        "request_duration_ms": duration_ms,
        "has_more": has_more,
        "page_size": flow.page_size,
        "page_count": len(page.results),
        "page_number": page_number,
        "max_pages": max(1, math.ceil(flow.cap / flow.page_size)),
        "remaining_results": flow.cap - page.end_offset,
        "total_results": page.cumulative,
        "results": [row.to_doc(wrap_lists=flow.wrap_lists) for row in page.results],
    }
    if not has_more:
        doc["total_pages"] = page_number
    doc.update(flow.extras)
    return doc


class CursorStore:
    """Cursor tokens of all orgs.

    Args:
        now: the clock's monotonic reading (virtual seconds).
        new_id: a source of unique ids for tokens.
        ttl_s: cursor lifetime in virtual seconds.
    """

    def __init__(self, now: Callable[[], float], new_id: Callable[[], str], ttl_s: float) -> None:
        self._now = now
        self._new_id = new_id
        self.ttl_s = ttl_s
        self.entries: dict[str, CursorEntry] = {}

    def issue(self, flow: Flow, *, offset: int, page_number: int, cumulative: int) -> str:
        """Mint a token for the page starting at ``offset``."""
        self._prune()
        payload = orjson.dumps({"id": self._new_id(), "p": page_number})
        token = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        self.entries[token] = CursorEntry(
            token, flow, offset, page_number, cumulative, self._now() + self.ttl_s
        )
        return token

    def claim(self, token: str, org: int) -> CursorEntry:
        """The entry of ``token`` marked in flight, or :class:`CursorError` (400/404/409)."""
        entry = self.entries.get(token)
        if entry is None:
            raise CursorError(400, "Invalid or expired cursor")
        if entry.flow.org != org:
            raise CursorError(404, "Search not found or has no parsed_query.")
        if self._now() >= entry.expires_at:
            raise CursorError(400, "Invalid or expired cursor")
        if entry.in_flight:
            raise CursorError(409, "Cursor is already being processed")
        entry.in_flight = True
        return entry

    def expire(self, token: str) -> None:
        """Test hook: make ``token`` expired now."""
        self.entries[token].expires_at = self._now()

    def _prune(self) -> None:
        if len(self.entries) % 256 == 0:
            now = self._now()
            for token in [t for t, e in self.entries.items() if e.expires_at <= now]:
                if not self.entries[token].in_flight:
                    del self.entries[token]
