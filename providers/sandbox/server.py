"""The aiohttp plumbing every emulator shares: app factory, fault/stats middleware, JSON helpers.

:func:`new_app` returns a ``web.Application`` whose outermost middleware (design §4):

1. counts the call under its route key (method + route template, from
   ``request.match_info.route.resource.canonical``; ``"<unmatched>"`` for unknown paths), and as
   in flight until it is answered (``peak_in_flight``; ``peak_jobs_in_flight`` is sampled after a
   request that started a job, see :meth:`~providers.sandbox.stats.StatsRecorder.track_jobs`), and
   answers a path the API does not have with a 404 (a wrong method with a 405 and ``Allow``) in the
   provider's own JSON error shape, before authentication, as the providers' frameworks do,
2. applies the first firing :class:`FaultRule` (``http_5xx``/``http_429`` with ``Retry-After``,
   ``reset`` = abort the transport so the client sees a disconnect, ``slow`` = ``clock.sleep`` then
   continue, ``malformed_json`` = run the handler and truncate its body mid-JSON),
3. runs the emulator's own middlewares (auth, per-key limits) and the handler (a raised
   :class:`Reply` is its response: helpers can answer early without aiohttp's HTTPException),
4. records the response status, and logs every request (route, query, headers without
   credentials, body, arrival time on the sandbox clock) for tests: ``Sandbox.requests()``,
5. shows the response to the observers of :func:`observe_responses` (conformance tests).

It also serves ``GET /_sandbox/stats`` (no auth). Internal routes (``/_sandbox/...``) are neither
counted nor faulted. Error bodies of injected faults use the emulator's ``error_body`` so each
provider keeps its documented error shape (Sixtyfour: ``{"detail": "..."}``, contract sixtyfour §0).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from aggregator.log import get_logger
from providers.sandbox.context import SandboxContext
from providers.sandbox.faults import FaultRule
from providers.sandbox.ratelimit import retry_after_header

__all__ = [
    "ErrorBody",
    "Handler",
    "ObservedResponse",
    "Reply",
    "ResponseObserver",
    "default_error_body",
    "json_response",
    "new_app",
    "observe_responses",
    "route_key",
]

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorBody = Callable[[int, str], Any]
ROUTE_KEY = web.RequestKey("sandbox.route_key", str)
_STATS_PATH = "/_sandbox/stats"
_FAULT_MESSAGES = {429: "Rate limit exceeded", 500: "Internal server error", 502: "Bad gateway",
                   503: "Service unavailable", 504: "Gateway timeout"}


@dataclass(frozen=True)
class ObservedResponse:
    """One response an emulator sent, as a :func:`observe_responses` observer sees it.

    Attributes:
        provider: the emulator's provider name (``"sixtyfour"``).
        route: the route key, e.g. ``"GET /search/status/{task_id}"`` (``"<unmatched>"`` for unknown paths).
        method: the request method.
        path: the request path.
        status: the response status.
        content_type: the response's content type (None when unset).
        body: the body as sent (``b""`` for a streamed response).
        injected: a fault rule produced or altered the response (it is not the emulator's own).
    """

    provider: str
    route: str
    method: str
    path: str
    status: int
    content_type: str | None
    body: bytes
    injected: bool


ResponseObserver = Callable[[ObservedResponse], None]
_OBSERVERS: list[ResponseObserver] = []


def observe_responses(observer: ResponseObserver) -> Callable[[], None]:
    """Call ``observer`` with every response of every in-process emulator from now on (internal
    ``/_sandbox/`` routes excepted); the conformance tests validate them against the providers'
    published schemas. Returns the function that unsubscribes it."""
    _OBSERVERS.append(observer)

    def unsubscribe() -> None:
        if observer in _OBSERVERS:
            _OBSERVERS.remove(observer)

    return unsubscribe


def _notify(provider: str, request: web.Request, key: str, response: web.StreamResponse, injected: bool) -> None:
    body = response.body if isinstance(response, web.Response) else b""
    observed = ObservedResponse(provider=provider, route=key, method=request.method, path=request.path,
                                status=response.status, content_type=response.content_type or None,
                                body=body if isinstance(body, bytes) else b"", injected=injected)
    for observer in tuple(_OBSERVERS):
        observer(observed)


class Reply(Exception):
    """Raise to answer the request with ``response`` now (early returns from helpers)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response

    @classmethod
    def json(
        cls, doc: Any, *, status: int, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """A :class:`Reply` carrying a JSON response."""
        return cls(json_response(doc, status=status, headers=headers))


def default_error_body(status: int, message: str) -> Any:
    """``{"detail": message}`` -- the FastAPI shape most providers here use."""
    return {"detail": message}


def json_response(
    doc: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialized with orjson."""
    return web.Response(
        body=orjson.dumps(doc), status=status, headers=headers, content_type="application/json"
    )


def route_key(request: web.Request) -> str:
    """``"<METHOD> <route template>"`` of ``request``, e.g. ``"GET /search/status/{task_id}"``."""
    if ROUTE_KEY in request:
        return request[ROUTE_KEY]
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else "<unmatched>"
    return f"{request.method} {template}"


def new_app(
    ctx: SandboxContext,
    *,
    middlewares: Iterable[Any] = (),
    error_body: ErrorBody = default_error_body,
) -> web.Application:
    """An application with the shared sandbox middleware, ``middlewares`` inside it, and the
    ``GET /_sandbox/stats`` route. Emulators add their own routes to it."""
    app = web.Application(
        middlewares=[_sandbox_middleware(ctx, error_body), *middlewares],
        client_max_size=8 * 1024 * 1024,
    )

    async def stats(_: web.Request) -> web.Response:
        return json_response(ctx.stats.snapshot())

    app.router.add_get(_STATS_PATH, stats)
    return app


def _sandbox_middleware(ctx: SandboxContext, error_body: ErrorBody) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = route_key(request)
        request[ROUTE_KEY] = key
        if request.path.startswith("/_sandbox/"):
            return await _call(handler, request)
        ctx.stats.count_call(key)
        ctx.stats.request_started(key)
        try:
            return await _counted(ctx, request, handler, key, error_body)
        finally:
            ctx.stats.request_finished(key)

    return middleware


async def _counted(ctx: SandboxContext, request: web.Request, handler: Handler, key: str,
                   error_body: ErrorBody) -> web.StreamResponse:
    """Steps 2-5 of the middleware for one counted request (see the module docstring)."""
    jobs_before = ctx.stats.counter("jobs_started")
    body = await request.read() if request.body_exists else b""
    entry = ctx.stats.record_request(key, request.method, request.path, request.query, request.headers,
                                     body, ctx.clock.monotonic())
    unrouted = _unrouted(request, error_body)
    rule = ctx.faults.draw_http(ctx.provider, key) if unrouted is None else None
    if rule is not None:
        ctx.stats.count_fault(key)
        log.info("sandbox.fault_injected", provider=ctx.provider, endpoint=key, kind=rule.kind)
    try:
        response = unrouted or await _respond(ctx, request, handler, rule, error_body)
    except web.HTTPException as exc:
        ctx.stats.count_status(key, exc.status)
        entry.status = exc.status
        raise
    entry.status = "reset" if response.get(_RESET, False) else response.status
    ctx.stats.count_status(key, entry.status)
    if ctx.stats.counter("jobs_started") != jobs_before:  # the only moment jobs in flight can rise
        ctx.stats.sample_jobs()
    if _OBSERVERS:
        _notify(ctx.provider, request, key, response, injected=rule is not None)
    return response


_RESET = web.ResponseKey("sandbox.reset", bool)  # marker: the connection was aborted
_ROUTING_MESSAGES = {404: "Not Found", 405: "Method Not Allowed"}  # Starlette's texts (FastAPI services)


def _unrouted(request: web.Request, error_body: ErrorBody) -> web.Response | None:
    """The provider's own JSON error for a path the API does not have (404) or a method it does not
    allow there (405, with ``Allow``), answered before authentication as a routed framework does;
    None when the request matched a route. Unrouted requests are never faulted."""
    exc = request.match_info.http_exception
    if exc is None:
        return None
    message = _ROUTING_MESSAGES.get(exc.status, exc.reason)
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return json_response(error_body(exc.status, message), status=exc.status, headers=headers)


async def _respond(
    ctx: SandboxContext,
    request: web.Request,
    handler: Handler,
    rule: FaultRule | None,
    error_body: ErrorBody,
) -> web.StreamResponse:
    if rule is None:
        return await _call(handler, request)
    if rule.kind == "slow":
        await ctx.clock.sleep(rule.delay_s)
        return await _call(handler, request)
    if rule.kind == "malformed_json":
        return _truncate(await _call(handler, request))
    if rule.after_handler:
        await _call(handler, request)
    if rule.kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        aborted = web.Response(status=599)
        aborted[_RESET] = True
        return aborted
    status = 429 if rule.kind == "http_429" else rule.status
    headers: dict[str, str] = {}
    if rule.retry_after_s is not None:
        headers["Retry-After"] = retry_after_header(rule.retry_after_s)
    message = _FAULT_MESSAGES.get(status, "Injected fault")
    return json_response(error_body(status, message), status=status, headers=headers)


async def _call(handler: Handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except Reply as reply:
        return reply.response


def _truncate(response: web.StreamResponse) -> web.StreamResponse:
    """The same status with the JSON body cut in half (never valid JSON)."""
    body = response.body if isinstance(response, web.Response) else None
    raw = body if isinstance(body, bytes) and len(body) > 1 else b'{"detail": "'
    return web.Response(
        body=raw[: max(1, len(raw) // 2)], status=response.status, content_type="application/json"
    )
