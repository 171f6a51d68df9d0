"""Issue 15: flows written from the providers' documents alone (``tests/outside/flows.py``) work on the
sandbox, end to end, on the client's own clock (time scale 1; a fake clock the flows advance by waiting).

The same flows run against a standalone ``deepsearch sandbox serve`` in real time with
``python -m tests.outside.flows sb.json``.
"""

from __future__ import annotations

import aiohttp

from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.emulator_http import HoldableClock
from tests.outside.flows import run_all

DOCUMENTED_COMPANY_FIELDS = {
    "company_name_alias", "canonical_linkedin_url", "description_enriched", "hq_full_address",
    "company_locations_full", "employees_count_inferred", "employees_count_change",
    "employees_count_breakdown_by_department", "employees_count_breakdown_by_region",
    "employees_count_by_country", "revenue_annual", "revenue_annual_range", "company_emails",
    "company_phone_numbers",
}


async def test_every_outside_flow_works_on_a_real_time_sandbox() -> None:
    clock = HoldableClock()
    config = SandboxConfig(n_companies=1000, time_scale=1.0, providers=("sixtyfour", "extruct", "orbit"))
    async with Sandbox(config, clock=clock) as sandbox, aiohttp.ClientSession() as session:
        out = await run_all(session, sandbox.base_urls, sandbox.api_keys, clock.sleep,
                            lambda: clock.now().timestamp())
    deep = out["sixtyfour_deep_search"]
    assert deep["start_status"] == "queued" and deep["status"] == "completed" and deep["polls"] > 1
    assert deep["download_status"] == 200 and deep["csv_rows"] == deep["total_results"] > 0
    assert deep["url_lifetime_s"] == 900  # 15 minutes, on the client's clock (Sixtyfour §1.3)
    paging = out["sixtyfour_cursor_paging"]
    assert paging["rows"] == paging["total_results"] == deep["total_results"]
    assert paging["cursor_expires_in_seconds"] == 1800
    export = out["sixtyfour_export"]
    assert export["status"] == "completed" and export["csv_rows"] == export["exported_count"] > 0
    filters = out["sixtyfour_filter_search"]
    assert filters["query_rows"] == 5 and filters["legacy_status"] == 200 and filters["legacy_rows"] == 5
    assert set(filters["company_fields"]) >= DOCUMENTED_COMPANY_FIELDS
    extruct = out["extruct"]
    assert extruct["status"] == "done" and extruct["results"] > 0 and extruct["resume_status"] == 200
    assert extruct["resumed_status"] == "done" and extruct["results_after_resume"] > extruct["results"]
    assert extruct["billing_status"] == 200 and {"user", "subscription"} <= set(extruct["billing_keys"])
    orbit = out["orbit"]
    assert orbit["status"] == "completed" and orbit["profile_status"] == 200
    assert orbit["replay"][1] == "completed"  # a finished run's requestId answers with the finished run
