"""Acme's adapter: ``POST /v1/searches`` -> ``GET /v1/searches/{id}`` -> ``GET /v1/searches/{id}/people?offset=``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aggregator.config import ProviderSettings
from aggregator.contract import (
    Capabilities,
    Checkpoint,
    JobRef,
    JobState,
    Page,
    Pending,
    PollPolicy,
    ProviderAdapter,
    Ready,
)
from aggregator.models import Hit, Person, SearchRequest
from providers.sandbox.truth import lookup
from providers.sandbox.world import World

PAGE = 10


class AcmeAdapter(ProviderAdapter):
    name = "acme"
    capabilities = Capabilities(modes=frozenset({"people"}), idempotent_submit=True)

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @classmethod
    def poll_policy_from(cls, settings: ProviderSettings) -> PollPolicy:
        return PollPolicy(interval_s=settings.poll_interval_s, max_interval_s=settings.poll_max_interval_s)

    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        response = await self.client.request("POST", "/v1/searches", endpoint="POST /v1/searches", idempotent=True,
                                             json={"query": request.query, "request_id": idempotency_key})
        return JobRef(self.name, response.data["id"], idempotency_key, request.mode, datetime.now(UTC))

    async def poll(self, job: JobRef) -> JobState:
        response = await self.client.request("GET", f"/v1/searches/{job.job_id}", endpoint="GET /v1/searches/{id}",
                                             idempotent=True)
        return Ready(total_results=response.data["total"]) if response.data["status"] == "done" else Pending()

    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        offset = int((checkpoint or {}).get("offset", 0))
        response = await self.client.request("GET", f"/v1/searches/{job.job_id}/people",
                                             endpoint="GET /v1/searches/{id}/people",
                                             params={"offset": str(offset), "limit": str(PAGE)}, idempotent=True)
        rows: list[dict[str, Any]] = response.data["people"]
        hits = tuple(Hit(provider=self.name, provider_record_id=row["handle"], job_id=job.job_id,
                         rank=offset + i + 1, raw=row, retrieved_at=datetime.now(UTC),
                         entity=Person(full_name=row["name"], title=row["role"], company_name=row["employer"],
                                       linkedin_url=f"https://www.linkedin.com/in/{row['handle']}"))
                     for i, row in enumerate(rows))
        return Page(hits=hits, checkpoint={"offset": offset + len(rows)}, done=not response.data["has_more"])


def true_id(hit: Hit, world: World) -> str | None:
    """Acme's ``handle`` is the LinkedIn slug of the world's person."""
    return lookup(world).person_by_slug.get(str(hit.raw.get("handle", "")).lower())
