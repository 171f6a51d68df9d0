"""Issue 15, items 1-3: what the emulators state on the wire is true for a client that is not ours.

- A standalone sandbox runs in real time unless told otherwise, so a signed URL lives 15 minutes and a
  cursor 1800 s *of the client's clock* (not 20 s and 40 s of wall time, as at time scale 0.02), and
  timestamps are the present, not hours ahead.
- Ids and signing secrets are unique per sandbox instance: an id saved from one sandbox is a 404 at
  the next, in the provider's own error shape; tests that need repeatable ids pass ``id_seed``.
- A path the API does not have is a JSON 404 (a wrong method a 405 with ``Allow``) in each provider's
  own error envelope, before authentication.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.emulator_http import HoldableClock

ALL = ("sixtyfour", "extruct", "orbit")
DEEP = "/search/start-deep-search"
QUERY = "/search/query"
TASKS = "/v1/discovery_tasks"
RUNS = "/v2/developer/deep-search"


def auth(sandbox: Sandbox, provider: str) -> dict[str, str]:
    key = sandbox.api_key(provider)
    return {"x-api-key": key} if provider == "sixtyfour" else {"Authorization": f"Bearer {key}"}


async def call(session: aiohttp.ClientSession, sandbox: Sandbox, provider: str, method: str, path: str,
               body: Any = None, *, key: bool = True) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    url = path if path.startswith("http") else sandbox.base_urls[provider] + path
    headers = auth(sandbox, provider) if key else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        raw = await response.read()
        doc = await response.json(content_type=None) if response.content_type == "application/json" else raw
        return response.status, doc, dict(response.headers)


async def start_job(session: aiohttp.ClientSession, sandbox: Sandbox, provider: str) -> tuple[str, str]:
    """Start one job at ``provider``; returns (its id, the path that reads it back)."""
    if provider == "sixtyfour":
        _, doc, _ = await call(session, sandbox, provider, "POST", DEEP, {"query": "CTO in Berlin"})
        return doc["task_id"], f"/search/status/{doc['task_id']}"
    if provider == "extruct":
        _, doc, _ = await call(session, sandbox, provider, "POST", TASKS,
                                    {"query": "fintech companies in London", "desired_num_results": 10})
        return doc["id"], f"{TASKS}/{doc['id']}"
    person = sandbox.world.people[0]
    status, doc, _ = await call(session, sandbox, provider, "POST", RUNS,
                                {"linkedinUrl": f"https://www.linkedin.com/in/{person.linkedin_slug}"})
    assert status == 202, doc
    return doc["request_id"], f"{RUNS}/{doc['request_id']}"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def small(**kw: Any) -> SandboxConfig:
    return SandboxConfig(**{"n_companies": 200, "providers": ALL, **kw})


async def test_two_sandboxes_one_after_the_other_never_share_an_id(session: aiohttp.ClientSession) -> None:
    saved: dict[str, tuple[str, str]] = {}
    async with Sandbox(small()) as first:
        for provider in ALL:
            saved[provider] = await start_job(session, first, provider)
            assert (await call(session, first, provider, "GET", saved[provider][1]))[0] == 200
    async with Sandbox(small()) as second:  # same seed, same world
        for provider in ALL:
            job_id, _ = await start_job(session, second, provider)
            assert job_id != saved[provider][0]
            status, doc, _ = await call(session, second, provider, "GET", saved[provider][1])
            assert status == 404, (provider, doc)
            if provider == "orbit":
                assert doc["status"] == "failed" and doc["error"]["code"]
            else:
                assert isinstance(doc["detail"], str)


async def test_an_id_seed_makes_ids_repeatable_and_the_signing_secret_is_per_instance() -> None:
    ids, secrets = [], []
    for config in (small(id_seed="t"), small(id_seed="t"), small(), small()):
        async with Sandbox(config) as sandbox:
            ctx = sandbox._contexts["sixtyfour"]
            ids.append([ctx.new_uuid() for _ in range(3)])
            secrets.append(ctx.sign("resource_handle_id=rh_1&expires=1"))
    assert ids[0] == ids[1] and ids[2] != ids[3] and ids[0] != ids[2]
    assert secrets[0] == secrets[1] and len({*secrets[1:]}) == 3


async def test_a_real_time_sandbox_keeps_signed_urls_and_cursors_as_long_as_documented(
    session: aiohttp.ClientSession,
) -> None:
    """Default emulator settings, a clock the test moves: past the 20 s and 40 s that a 0.02 time scale
    used to give real clients, up to the documented 900 s (Sixtyfour §1.3) and 1800 s (Sixtyfour §2.3),
    and no further."""
    clock = HoldableClock()
    async with Sandbox(SandboxConfig(n_companies=200, time_scale=1.0), clock=clock) as sandbox:
        task_id, status_path = await start_job(session, sandbox, "sixtyfour")
        sandbox.emulator("sixtyfour").force_complete(task_id)
        done = (await call(session, sandbox, "sixtyfour", "GET", status_path))[1]
        url = (await call(session, sandbox, "sixtyfour", "GET",
                          f"/search/download?resource_handle_id={done['resource_handle_id']}"))[1]["url"]
        expires = int(parse_qs(urlsplit(url).query)["expires"][0])
        assert expires - clock.now().timestamp() == pytest.approx(900, abs=1)
        first = (await call(session, sandbox, "sixtyfour", "POST", QUERY,
                            {"search_id": done["search_id"], "page_size": 1}))[1]
        assert first["cursor_expires_in_seconds"] == 1800
        for moment in (20, 40, 899):
            await clock.sleep(moment - clock.t)
            assert (await call(session, sandbox, "sixtyfour", "GET", url, key=False))[0] == 200, moment
        await clock.sleep(1799 - clock.t)
        status, second, _ = await call(session, sandbox, "sixtyfour", "POST", QUERY, {"cursor": first["next_cursor"]})
        assert status == 200 and second["page_number"] == 2
        status, body, _ = await call(session, sandbox, "sixtyfour", "GET", url, key=False)
        assert status == 403 and b"ExpiredToken" in body
        await clock.sleep(1801)
        status, doc, _ = await call(session, sandbox, "sixtyfour", "POST", QUERY, {"cursor": second["next_cursor"]})
        assert status == 400 and doc == {"detail": "Invalid or expired cursor"}


async def test_timestamps_of_a_real_time_sandbox_are_the_present(session: aiohttp.ClientSession) -> None:
    async with Sandbox(small(time_scale=1.0)) as sandbox:
        before = datetime.now(UTC)
        _, path = await start_job(session, sandbox, "sixtyfour")
        started = (await call(session, sandbox, "sixtyfour", "GET", path))[1]["start_time"]
        _, path = await start_job(session, sandbox, "extruct")
        created = (await call(session, sandbox, "extruct", "GET", path))[1]["created_at"]
        after = datetime.now(UTC)
    for stamp in (started, created):
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert before.replace(microsecond=0) <= moment <= after, (stamp, before, after)


@pytest.mark.parametrize("provider", ALL)
async def test_an_unknown_path_and_a_wrong_method_answer_in_the_providers_own_json_shape(
    session: aiohttp.ClientSession, provider: str,
) -> None:
    routed = {"sixtyfour": DEEP, "extruct": TASKS, "orbit": RUNS}[provider]
    async with Sandbox(small(providers=(provider,))) as sandbox:
        for key in (True, False):  # routing comes before authentication
            status, doc, headers = await call(session, sandbox, provider, "GET", "/no/such/route", key=key)
            assert status == 404 and headers["Content-Type"] == "application/json"
            assert doc == ({"status": "failed", "error": {"code": "not_found", "message": "Not Found"}}
                           if provider == "orbit" else {"detail": "Not Found"})
        status, doc, headers = await call(session, sandbox, provider, "DELETE", routed)
        assert status == 405 and "POST" in headers["Allow"]
        assert doc == ({"status": "failed", "error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}
                       if provider == "orbit" else {"detail": "Method Not Allowed"})
        assert [r.status for r in sandbox.requests(provider)] == [404, 404, 405]


async def test_every_emulator_reports_its_peak_of_jobs_in_flight(session: aiohttp.ClientSession) -> None:
    """Issue 16, item 4: ``/_sandbox/stats`` carries each provider's peak of jobs in flight (all orgs), so
    tests can prove caps held across processes."""
    clock = HoldableClock()
    async with Sandbox(small(time_scale=1.0), clock=clock) as sandbox:
        for provider in ALL:
            for _ in range(2):
                await start_job(session, sandbox, provider)
        await clock.sleep(7200)  # every job ends
        await start_job(session, sandbox, "sixtyfour")
        peaks = {p: doc["peak_jobs_in_flight"] for p, doc in sandbox.stats()["providers"].items()}
    assert peaks == {"sixtyfour": 2, "extruct": 2, "orbit": 2}
