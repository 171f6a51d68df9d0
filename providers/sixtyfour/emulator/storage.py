"""Downloads of the Sixtyfour emulator: signed URLs and the sandbox "bucket" (contract §1.3).

``GET /search/download?resource_handle_id=...`` (auth) answers ``{url, bucket, path}``; ``url``
points at ``/_storage/<path>?expires=<virtual epoch s>&signature=<hmac>`` on the same server and
is valid ``download_url_ttl_s`` (DOC: 900 s). The storage route stands for GCS/S3: it ignores
``x-api-key`` (the real URL is fetched without it, DOC code sample) but counts requests that
carry one, or any ``Authorization`` header (``storage_requests_with_api_key``), so tests can prove
the client never leaks its key to the download host. A bad signature or an expired URL -> 403 with a GCS-like XML error
(INF: the real storage backend's exact answer is unknown; S3 also uses 403 for both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from aggregator.log import get_logger
from providers.sixtyfour.emulator.http import ORG, detail_error, ok, validate
from providers.sixtyfour.emulator.models import DownloadQuery
from providers.sixtyfour.emulator.rows import render_csv

if TYPE_CHECKING:
    from providers.sixtyfour.emulator import SixtyfourEmulator

__all__ = ["BUCKET", "StorageHandlers"]

log = get_logger(__name__)

BUCKET = "sixtyfour-sandbox"
_XML_ERROR = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
              "<Message>{message}</Message></Error>")


def _storage_error(status: int, code: str, message: str) -> web.Response:
    body = _XML_ERROR.format(code=code, message=message)
    return web.Response(status=status, text=body, content_type="application/xml")


class StorageHandlers:
    """``/search/download`` and ``/_storage/{path}`` bound to one emulator."""

    def __init__(self, em: SixtyfourEmulator) -> None:
        self.em = em

    async def download(self, request: web.Request) -> web.Response:
        """``GET /search/download`` -> ``{url, bucket, path}`` for a completed csv-mode task
        (a deep search or an export)."""
        em, org = self.em, request[ORG]
        query = validate(DownloadQuery, dict(request.query), where="query")
        task = em.tasks.by_handle(org, query.resource_handle_id)
        if task is None or task.status(em.now()) != "completed":
            raise detail_error(404, "Search task or export file not found.")
        folder = "export" if task.kind == "export" else "search"
        path = f"org_{org}/{folder}/{task.task_id}/results.csv"
        expires = int(em.ctx.clock.now().timestamp() + em.settings.download_url_ttl_s)
        signature = em.ctx.sign(f"{path}\n{expires}")
        url = f"{request.url.origin()}/_storage/{path}?expires={expires}&signature={signature}"
        return ok({"url": url, "bucket": BUCKET, "path": path})

    async def fetch(self, request: web.Request) -> web.Response:
        """``GET /_storage/{path}``: the CSV if signature and expiry hold, else 403 XML."""
        em, stats = self.em, self.em.ctx.stats
        stats.add("storage_requests")
        if "x-api-key" in request.headers or "Authorization" in request.headers:  # any credential
            stats.add("storage_requests_with_api_key")
            log.warning("sixtyfour.storage_request_with_api_key", path=request.path)
        path = request.match_info["path"]
        expires = request.query.get("expires", "")
        signature = request.query.get("signature", "")
        if not expires.isdigit() or not em.ctx.verify(f"{path}\n{expires}", signature):
            return _storage_error(403, "SignatureDoesNotMatch", "The request signature we "
                                  "calculated does not match the signature you provided.")
        if em.ctx.clock.now().timestamp() > int(expires):
            return _storage_error(403, "ExpiredToken", "The provided token has expired. "
                                  f"Request signature expired at: {expires}")
        parts = path.split("/")
        task = em.tasks.tasks.get(parts[2]) if len(parts) == 4 else None
        if task is None:
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        body = render_csv(task.mode, task.delivered)
        return web.Response(body=body, content_type="text/csv", charset="utf-8")
