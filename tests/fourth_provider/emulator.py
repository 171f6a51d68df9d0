"""Acme's emulator: people of the world whose title appears in the query, ready after one poll."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from providers.sandbox.context import SandboxContext
from providers.sandbox.server import json_response, new_app


class AcmeEmulator:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.searches: dict[str, dict[str, Any]] = {}
        self.by_request_id: dict[str, str] = {}
        self.app = new_app(ctx)
        self.app.router.add_post("/v1/searches", self.start)
        self.app.router.add_get("/v1/searches/{id}", self.status)
        self.app.router.add_get("/v1/searches/{id}/people", self.people)

    async def start(self, request: web.Request) -> web.Response:
        body = await request.json()
        search_id = self.by_request_id.get(body["request_id"])
        if search_id is None:
            query = body["query"].lower()
            people = [p for p in self.ctx.world.people
                      if p.title.lower() in query and self.ctx.world.visible("acme", p.true_id)]
            search_id = self.by_request_id[body["request_id"]] = str(uuid.uuid4())
            self.searches[search_id] = {"people": people, "polls": 0}
            self.ctx.stats.add("jobs_started")
        return json_response({"id": search_id, "status": "running"})

    async def status(self, request: web.Request) -> web.Response:
        search = self.searches[request.match_info["id"]]
        search["polls"] += 1
        return json_response({"status": "done" if search["polls"] > 1 else "running",
                              "total": len(search["people"])})

    async def people(self, request: web.Request) -> web.Response:
        people = self.searches[request.match_info["id"]]["people"]
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        rows = [{"handle": p.linkedin_slug, "name": p.full_name, "role": p.title,
                 "employer": self.ctx.world.company(p.company_id).name} for p in people[offset:offset + limit]]
        return json_response({"people": rows, "has_more": offset + limit < len(people)})


def create_emulator(ctx: SandboxContext, settings: Mapping[str, Any]) -> AcmeEmulator:
    return AcmeEmulator(ctx)
