"""Sixtyfour's export as an alternative way to fetch a finished search's results (§1.4, §1.3).

``POST /search/export {search_id, mode, max_results, exclusions}`` -> ``task_id``; poll
``GET /search/status/{task_id}`` until ``completed``; then ``GET /search/download`` for a signed
URL (valid 900 s) that is fetched *without* the API key; the CSV rows become hits.

DOC: "If an export is already in progress for the given search_id, the API returns 409. Poll the
existing task_id instead of starting a new export." The documented 409 body does not carry that
id, so the adapter adopts, in order: a ``task_id`` in the 409 body (the sandbox sends one; an INF
extension), or the export task this job recorded in its checkpoint. Without either it raises the
409 with a clear message rather than starting a second export.
"""

from __future__ import annotations

from typing import Any

import orjson

from aggregator.contract import Checkpoint, JobRef, Page, ProviderClient
from aggregator.errors import InvalidRequestError, JobFailedError, ProviderProtocolError
from aggregator.log import get_logger
from providers.sixtyfour.wire import (
    PROVIDER,
    DownloadResponse,
    StartResponse,
    StatusResponse,
    hit_from_csv,
    parse,
    rows_from_csv,
)

__all__ = ["download_csv", "fetch_via_export"]

log = get_logger("providers.sixtyfour.export")

EXPORT = "POST /search/export"
STATUS = "GET /search/status/{task_id}"
DOWNLOAD = "GET /search/download"
SIGNED_URL = "GET <signed download URL>"
PENDING_STATUSES = frozenset({"queued", "pending", "running"})
FAILED_STATUSES = frozenset({"failed", "cancelled", "canceled", "terminated", "timed_out"})


def _task_in_conflict(error: InvalidRequestError) -> str | None:
    try:
        body = orjson.loads(error.body_excerpt)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict):
        for container in (body, body.get("detail")):
            if isinstance(container, dict) and isinstance(container.get("task_id"), str):
                return str(container["task_id"])
    return None


async def _start_export(client: ProviderClient, job: JobRef, known: str | None) -> str:
    body: dict[str, Any] = {"search_id": job.extra.get("search_id") or job.idempotency_key,
                            "mode": job.mode, "max_results": int(job.extra.get("max_results", 1000))}
    if job.extra.get("exclude"):
        body["exclude_entity_ids"] = list(job.extra["exclude"])
    try:  # safe to retry: a repeat while our export runs gets the 409 below and is adopted
        response = await client.request("POST", "/search/export", endpoint=EXPORT, json=body,
                                        idempotent=True)
    except InvalidRequestError as exc:
        running = _task_in_conflict(exc) if exc.status == 409 else None
        if exc.status != 409 or not (running or known):
            raise
        log.info("sixtyfour.export_adopted", task_id=running or known)
        return str(running or known)
    return parse(StartResponse, response.data, EXPORT).task_id


async def _wait_for_export(client: ProviderClient, task_id: str, poll_s: float) -> StatusResponse:
    while True:
        response = await client.request("GET", f"/search/status/{task_id}", endpoint=STATUS, idempotent=True)
        status = parse(StatusResponse, response.data, STATUS)
        value = status.status.strip().lower()
        if value == "completed":
            return status
        if value in FAILED_STATUSES:
            raise JobFailedError(status.error or f"export {status.status}", provider=PROVIDER,
                                 endpoint=STATUS, request_id=task_id)
        if value not in PENDING_STATUSES:  # never poll on silently (contract: unknown status = protocol error)
            raise ProviderProtocolError(f"unknown export status {status.status!r}", provider=PROVIDER,
                                        endpoint=STATUS, request_id=task_id)
        await client.clock.sleep(poll_s)


async def download_csv(client: ProviderClient, job: JobRef, handle: str, credits_per_result: float) -> Page:
    """Download the CSV behind ``handle`` (signed URL, no API key) as one final page of hits."""
    response = await client.request("GET", "/search/download", endpoint=DOWNLOAD,
                                    params={"resource_handle_id": handle}, idempotent=True)
    link = parse(DownloadResponse, response.data, DOWNLOAD)
    content = await client.get_external(link.url, endpoint=SIGNED_URL)
    now = client.clock.now()
    rows = rows_from_csv(str(content.data), SIGNED_URL)
    hits = [hit_from_csv(row, mode=job.mode, rank=i, job_id=job.job_id, retrieved_at=now)
            for i, row in enumerate(rows, start=1)]
    return Page(hits=tuple(hits), checkpoint={"downloaded": True}, done=True,
                credits=credits_per_result * len(hits))


async def fetch_via_export(client: ProviderClient, job: JobRef, checkpoint: Checkpoint, *, poll_s: float,
                           credits_per_result: float) -> Page:
    """Export the job's search and read the CSV (one fetch step; polls the export itself)."""
    task_id = await _start_export(client, job, checkpoint.get("export_task"))
    status = await _wait_for_export(client, task_id, poll_s)
    if not status.resource_handle_id:
        raise ProviderProtocolError("completed export has no resource_handle_id", provider=PROVIDER,
                                    endpoint=STATUS, request_id=task_id)
    page = await download_csv(client, job, status.resource_handle_id, credits_per_result)
    return Page(hits=page.hits, checkpoint={"export_task": task_id, "downloaded": True}, done=True,
                credits=page.credits, reads=2)
