"""Settings and request models of the Extruct emulator (contract §4, §6, §7, §8, §9).

:class:`EmulatorSettings` holds every tunable, each tagged with its source: DOC values are the
published contract, INF/UNK values are our best guess of the real API, made configurable
(override through ``SandboxConfig.settings["extruct"]``). Durations are virtual seconds, rates
are per virtual minute.

Request models mirror the FastAPI backend (contract §1: OpenAPI ``info.title: FastAPI``):
unsupported fields are rejected (``extra="forbid"``, DOC guide "Unsupported request fields" ->
422) and violations become 422 with FastAPI's ``detail`` array (:mod:`providers.sandbox.fastapi`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DATA_SOURCES",
    "MAX_DESIRED_RESULTS",
    "CreateTaskBody",
    "CriterionBody",
    "EmulatorSettings",
    "PageQuery",
    "ResumeBody",
    "TableBody",
]

MAX_DESIRED_RESULTS = 250  # DOC: task target capped at 250 (contract §4, §7)
DATA_SOURCES: tuple[str, ...] = ("web_search", "linkedin", "maps")  # DOC current enum (§4)
DataSource = Literal["web_search", "linkedin", "maps"]


@dataclass(frozen=True)
class EmulatorSettings:
    """Tunables of the Extruct emulator (virtual seconds for ``*_s``, virtual minutes in rates)."""

    created_s: float = 2.0  # INF: time a new task stays "created" (§3, §10.1)
    discover_rate_per_min: float = 300.0  # INF: candidates discovered per minute (§3.1)
    enrich_rate_per_min: float = 200.0  # INF: discovered candidates screened + enriched per minute
    evaluate_rate_per_min: float = 100.0  # DOC (old CREATE page): "~100 companies per minute" (§3.1)
    max_pool_size: int = 600  # INF: most candidates one task can discover
    noise_share: float = 0.25  # INF: off-target discoveries per on-target one (web search noise)
    noise_pass_rate: float = 0.3  # INF: share of off-target candidates passing the pre-filter
    # INF: whether two tasks with the same query, criteria and exclusions discover the same
    # candidates in the same order. The real service searches the live web, so repeats can differ;
    # the sandbox defaults to repeatable so that runs (a resumed one, a fault-free one) compare.
    repeatable_discovery: bool = True
    failure_rate: float = 0.0  # INF: share of tasks that end "failed" (plus job_failure faults)
    fail_at: float = 0.6  # INF: a failing task fails after this share of its natural run
    results_default_limit: int = 100  # UNK -> INF: default ``limit`` of /results (§6)
    results_max_limit: int = 250  # UNK -> INF: largest ``limit`` of /results and the list (§6)
    list_default_limit: int = 20  # UNK -> INF: first-party CLI default for the list (§8)
    max_exclude_domains: int = 1000  # DOC cap of the resolved exclusion list; INF: 422 beyond (§4)
    credits_per_result: float = 1.0  # REPO: Deep Search bills 1 credit per match (§9)
    available_credits: float = 10_000.0  # INF: starting balance of every org (§8 /v1/user)
    plan_required: bool = False  # REPO: create/resume are Pro-gated -> 402 plan_required (§9)
    rate_limit_per_min: int | None = None  # UNK: no documented limit; None = not enforced (§9)
    rate_limit_window_s: float = 60.0  # window of ``rate_limit_per_min``
    website_www_rate: float = 0.08  # quirk: share of ``company_website`` values with ``www.``
    website_scheme_rate: float = 0.04  # quirk: share of ``company_website`` values with ``https://``
    legal_name_rate: float = 0.05  # quirk: share of ``company_name`` values that are legal names

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any]) -> EmulatorSettings:
        """Defaults with ``overrides`` applied; unknown names or bad values raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown extruct emulator settings: {unknown}")
        settings = cls(**dict(overrides))
        rates = (settings.discover_rate_per_min, settings.enrich_rate_per_min,
                 settings.evaluate_rate_per_min)  # fmt: skip
        if min(rates) <= 0 or settings.created_s < 0:
            raise ValueError("rates must be > 0 and created_s >= 0")
        if not 0 < settings.fail_at <= 1:
            raise ValueError("fail_at must be in (0, 1]")
        return settings


def _uuid_string(value: str) -> str:
    uuid.UUID(value)  # ValueError -> 422 "Value error, badly formed hexadecimal UUID string"
    return value


UuidStr = Annotated[str, AfterValidator(_uuid_string)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CriterionBody(_Body):
    """One scoring criterion (REPO rules, contract §4: key/name/criterion lengths)."""

    key: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=100)
    name: str = Field(min_length=1, max_length=100)
    criterion: str = Field(min_length=10, max_length=500)


class TableBody(_Body):
    """``table``: auto-import target (DOC example, contract §4); only ``id`` is used (echoed)."""

    id: UuidStr
    run: bool = False
    columns: list[UuidStr] | None = None
    auto_import: bool = False


class CreateTaskBody(_Body):
    """``POST /v1/discovery_tasks`` (contract §4)."""

    query: str
    desired_num_results: int = Field(100, ge=1, le=MAX_DESIRED_RESULTS)
    auto_data_sources: bool = True
    data_sources: list[DataSource] | None = None
    criteria: list[CriterionBody] | None = None
    table: TableBody | None = None
    exclude_domains: list[str] | None = None
    exclude_task_ids: list[UuidStr] | None = Field(None, max_length=100)  # DOC: up to 100

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be empty")
        return value

    @field_validator("criteria")
    @classmethod
    def _unique_keys(cls, value: list[CriterionBody] | None) -> list[CriterionBody] | None:
        # INF: scores are keyed by criterion key, so duplicate keys cannot be reported apart.
        keys = [c.key for c in value or ()]
        if len(set(keys)) != len(keys):
            raise ValueError("criteria keys must be unique")
        return value


class ResumeBody(_Body):
    """``POST /v1/discovery_tasks/{task_id}/resume`` (DOC, contract §7)."""

    desired_new_results: int = Field(25, ge=0, le=MAX_DESIRED_RESULTS)


class PageQuery(BaseModel):
    """``offset``/``limit`` query parameters (unknown parameters are ignored, as in FastAPI)."""

    model_config = ConfigDict(extra="ignore")

    offset: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1)
