"""Client flows written the way outside code is written: from the providers' documents alone.

Each flow is what a provider's own example script, first-party CLI or a notebook does (seed pages in
``../shared/seeds/``, contract notes in ``../shared/contracts/``): plain HTTP with the documented
headers, polling at the documented cadence, no import from this project. They run against any base
URLs, so the same code drives an in-process sandbox on a fake clock (``tests/test_outside_clients.py``)
and a standalone ``deepsearch sandbox serve`` in real time::

    deepsearch sandbox serve --connection-file sb.json &
    python -m tests.outside.flows sb.json        # prints what every flow returned (JSON)

``wait(seconds)`` is how a flow lets time pass between polls: the client's own clock.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson

Wait = Callable[[float], Awaitable[None]]
Now = Callable[[], float]
MAX_POLLS = 120


@dataclass
class Client:
    """One provider's base URL and key, as an outside client holds them."""

    session: aiohttp.ClientSession
    base: str
    headers: dict[str, str]

    async def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, json=body, headers=self.headers if auth else {}) as r:
            raw = await r.read()
            if r.content_type == "application/json":
                return r.status, orjson.loads(raw)
            return r.status, raw.decode()


async def poll(client: Client, path: str, wait: Wait, every_s: float, done: Callable[[Any], bool]) -> tuple[Any, int]:
    """GET ``path`` every ``every_s`` until ``done(doc)``; returns (doc, polls)."""
    for polls in range(1, MAX_POLLS + 1):
        status, doc = await client.call("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {doc}")
        if done(doc):
            return doc, polls
        await wait(every_s)
    raise AssertionError(f"GET {path} never finished after {MAX_POLLS} polls")


async def sixtyfour_deep_search(client: Client, wait: Wait, now: Now) -> dict[str, Any]:
    """Start -> poll /search/status every 10 s -> download link -> fetch the CSV without the key."""
    status, started = await client.call("POST", "/search/start-deep-search",
                                        {"query": "VP of Engineering in New York", "mode": "people",
                                         "max_results": 25})
    assert status == 200, started
    done, polls = await poll(client, f"/search/status/{started['task_id']}", wait, 10,
                             lambda d: d["status"] in ("completed", "failed"))
    status, link = await client.call("GET", f"/search/download?resource_handle_id={done['resource_handle_id']}")
    assert status == 200, link
    expires = int(parse_qs(urlsplit(link["url"]).query)["expires"][0])
    status, body = await client.call("GET", link["url"], auth=False)
    rows = list(csv.DictReader(io.StringIO(body))) if status == 200 else []
    return {"task_id": started["task_id"], "start_status": started["status"], "polls": polls,
            "status": done["status"], "total_results": done["total_results"], "search_id": done["search_id"],
            "download_status": status, "csv_rows": len(rows), "url_lifetime_s": round(expires - now()),
            "first_public_id": next((r.get("linkedin", "").rstrip("/").rsplit("/", 1)[-1] for r in rows), None)}


async def sixtyfour_cursor_paging(client: Client, search_id: str) -> dict[str, Any]:
    """POST /search/query by search_id, then follow ``next_cursor`` to the end."""
    status, page = await client.call("POST", "/search/query", {"search_id": search_id, "page_size": 10})
    assert status == 200, page
    pages, rows, ttl = [page], page["page_count"], page["cursor_expires_in_seconds"]
    while page["next_cursor"]:
        status, page = await client.call("POST", "/search/query", {"cursor": page["next_cursor"]})
        assert status == 200, page
        pages.append(page)
        rows += page["page_count"]
    return {"pages": len(pages), "rows": rows, "total_results": page["total_results"],
            "cursor_expires_in_seconds": ttl}


async def sixtyfour_export(client: Client, search_id: str, wait: Wait) -> dict[str, Any]:
    """POST /search/export -> poll its task -> download the CSV."""
    status, started = await client.call("POST", "/search/export", {"search_id": search_id})
    assert status == 200, started
    done, polls = await poll(client, f"/search/status/{started['task_id']}", wait, 10,
                             lambda d: d["status"] in ("completed", "failed"))
    status, link = await client.call("GET", f"/search/download?resource_handle_id={done['resource_handle_id']}")
    status, body = await client.call("GET", link["url"], auth=False)
    return {"status": done["status"], "polls": polls, "exported_count": done["exported_count"],
            "csv_rows": len(list(csv.DictReader(io.StringIO(body)))) if status == 200 else 0}


async def sixtyfour_filter_search(client: Client) -> dict[str, Any]:
    """Capabilities, then the same company filter through /search/query and the legacy
    /search/start-filter-search; company rows with their offices and head-count breakdowns."""
    status, caps = await client.call("GET", "/search/filter-capabilities?mode=company")
    assert status == 200, caps
    body = {"mode": "company", "simple_filters": {"hq_country_iso2": {"$eq": "US"}}, "page_size": 5}
    status, page = await client.call("POST", "/search/query", body)
    assert status == 200, page
    legacy_status, legacy = await client.call("POST", "/search/start-filter-search", body)
    source = page["results"][0]["raw_source"] if page["results"] else {}
    return {"capabilities_fields": len(caps.get("fields", caps.get("schema", []))),
            "query_rows": page["page_count"], "total": page["total_results"],
            "legacy_status": legacy_status,
            "legacy_rows": legacy.get("page_count") if isinstance(legacy, dict) else None,
            "company_fields": sorted(source)}


async def extruct_flow(client: Client, wait: Wait) -> dict[str, Any]:
    """Create a discovery task -> poll it -> results -> resume for more -> results -> billing."""
    status, task = await client.call("POST", "/v1/discovery_tasks",
                                     {"query": "B2B SaaS companies in the United States",
                                      "desired_num_results": 10})
    assert status == 200, task
    path = f"/v1/discovery_tasks/{task['id']}"
    done, polls = await poll(client, path, wait, 5, lambda d: d["status"] in ("done", "failed"))
    status, results = await client.call("GET", f"{path}/results?limit=100")
    status, _ = await client.call("POST", f"{path}/resume", {"desired_new_results": 5})
    again, _ = await poll(client, path, wait, 5, lambda d: d["status"] in ("done", "failed"))
    status_after, after = await client.call("GET", f"{path}/results?limit=100")
    billing_status, billing = await client.call("GET", "/v1/billing")
    return {"task_id": task["id"], "status": done["status"], "polls": polls, "results": len(results["results"]),
            "resume_status": status, "resumed_status": again["status"], "results_after_resume":
            len(after["results"]) if status_after == 200 else None, "billing_status": billing_status,
            "billing_keys": sorted(billing) if isinstance(billing, dict) else billing}


async def orbit_flow(client: Client, wait: Wait, public_id: str) -> dict[str, Any]:
    """Start a Deep Search run from a LinkedIn URL -> poll -> read the profile."""
    body = {"requestId": f"outside-{public_id}", "linkedinUrl": f"https://www.linkedin.com/in/{public_id}"}
    status, started = await client.call("POST", "/v2/developer/deep-search", body)
    assert status in (200, 202), started
    done, polls = await poll(client, f"/v2/developer/deep-search/{started['request_id']}", wait, 5,
                             lambda d: d["status"] in ("completed", "failed"))
    profile_status, profile = (0, None)
    if done["status"] == "completed":
        profile_status, profile = await client.call("GET", f"/v2/developer/profiles/{done['result']['id']}")
    replay_status, replay = await client.call("POST", "/v2/developer/deep-search", body)
    return {"request_id": started["request_id"], "start_status": started["status"], "polls": polls,
            "status": done["status"], "profile_status": profile_status,
            "profile_keys": sorted(profile["payload"])[:8] if isinstance(profile, dict) else None,
            "replay": [replay_status, replay.get("status")]}


async def run_all(session: aiohttp.ClientSession, base_urls: dict[str, str], keys: dict[str, str],
                  wait: Wait, now: Now) -> dict[str, Any]:
    """Every flow, in the order an evaluator would try them; returns what each returned."""
    sixtyfour = Client(session, base_urls["sixtyfour"], {"x-api-key": keys["sixtyfour"]})
    out: dict[str, Any] = {"sixtyfour_deep_search": await sixtyfour_deep_search(sixtyfour, wait, now)}
    search_id = out["sixtyfour_deep_search"]["search_id"]
    out["sixtyfour_cursor_paging"] = await sixtyfour_cursor_paging(sixtyfour, search_id)
    out["sixtyfour_export"] = await sixtyfour_export(sixtyfour, search_id, wait)
    out["sixtyfour_filter_search"] = await sixtyfour_filter_search(sixtyfour)
    if "extruct" in base_urls:
        extruct = Client(session, base_urls["extruct"], {"Authorization": f"bearer {keys['extruct']}"})
        out["extruct"] = await extruct_flow(extruct, wait)
    if "orbit" in base_urls and out["sixtyfour_deep_search"]["first_public_id"]:
        orbit = Client(session, base_urls["orbit"], {"Authorization": f"Bearer {keys['orbit']}"})
        out["orbit"] = await orbit_flow(orbit, wait, out["sixtyfour_deep_search"]["first_public_id"])
    return out


async def _main(doc: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        out = await run_all(session, doc["base_urls"], doc["api_keys"], asyncio.sleep, time.time)
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    asyncio.run(_main(orjson.loads(Path(sys.argv[1]).read_bytes())))
