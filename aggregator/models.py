"""The normalized schema: what goes into a search and what comes out, whatever the provider.

Shapes (all models are frozen pydantic v2 models; durations are seconds, times are UTC):

- :class:`SearchRequest` — query text, mode, max_results, providers, strategy, deadline_s, budget,
  plus provider-neutral refinements (``exclude`` identifiers, structured fields) and provider-only
  ``options`` that each adapter validates.
- :class:`Person` / :class:`Company` — one entity as one provider described it. Sixtyfour people rows
  (camelCase LinkedIn docs), Orbit profiles (headline + location + sections) and Sixtyfour/Extruct
  company rows all map onto these; fields a provider does not supply stay ``None``.
- :class:`Hit` — one provider's record with provenance: provider, provider record id, rank, score,
  evidence (Extruct per-criterion grades, Orbit corroboration), source URLs, the raw payload and
  ``retrieved_at``.
- :class:`MergedRecord` — one real-world entity after entity resolution: the consolidated entity,
  every provider's hit, which provider supplied each field, and the consensus.
- :class:`ProviderOutcome` — how one provider did in a run: status, counts, credits, timings, error.
- :class:`SearchReport` — the run: request, outcomes, merged records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

__all__ = [
    "CacheInfo",
    "Company",
    "Criterion",
    "Entity",
    "ErrorInfo",
    "Evidence",
    "FieldValue",
    "FieldValues",
    "FilterCapabilities",
    "FilterField",
    "Hit",
    "JsonObject",
    "MergedRecord",
    "Mode",
    "OutcomeStatus",
    "Person",
    "PersonIdentity",
    "ProviderOutcome",
    "SearchReport",
    "SearchRequest",
    "Strategy",
    "always_validate",
]

Mode = Literal["people", "company"]
Strategy = Literal["all", "fallback", "race"]
OutcomeStatus = Literal["found", "no_result", "partial", "failed", "skipped"]

LINKEDIN_PROFILE = re.compile(r"^https?://([a-z]{2,3}\.)?(www\.)?linkedin\.com/in/[^/?#]+", re.IGNORECASE)
MAX_RESULTS_LIMIT = 5000  # Sixtyfour /search/query cap (contract sixtyfour §2.3); others are lower
STRUCTURED_FIELDS = ("titles", "companies", "locations", "schools")


class _AsReceived:
    """The schema of :data:`JsonObject`: from Python, an ``isinstance(dict)`` check (in Rust, no copy);
    from JSON, a plain object."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.json_or_python_schema(
            json_schema=core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()),
            python_schema=core_schema.custom_error_schema(
                core_schema.is_instance_schema(dict), custom_error_type="dict_type"),
        )


JsonObject = Annotated[dict[str, Any], _AsReceived]
"""A JSON object for wire models, kept as received: checked to be a dict, never copied.

``dict[str, Any]`` rebuilds the dict (and a wire model is validated once per page, the normalized
hit once more); parsed JSON has string keys already, so only the type is checked. A non-object fails
like ``dict[str, Any]`` does (``dict_type``, "Input should be a valid dictionary").
"""

_MISSING: Any = object()
_M = TypeVar("_M", bound=BaseModel)
_Template = tuple[dict[str, Any], frozenset[str], tuple[tuple[str, Any], ...]]
_TEMPLATES: dict[type[BaseModel], _Template] = {}
_VALIDATE_TRUSTED = [False]
_set = object.__setattr__
_new = object.__new__


@contextmanager
def always_validate() -> Iterator[None]:
    """Within the block, ``trusted`` builds every model through full validation (``cls(**values)``).

    The reference path: tests normalize the same payloads with and without it and compare the hits.
    Not thread-safe (a test hook, not a setting).
    """
    before = _VALIDATE_TRUSTED[0]
    _VALIDATE_TRUSTED[0] = True
    try:
        yield
    finally:
        _VALIDATE_TRUSTED[0] = before


def _template(cls: type[BaseModel]) -> _Template:
    """Every field with its default (or a placeholder) in declaration order, the required fields and
    the fields with a default factory."""
    defaults: dict[str, Any] = {}
    factories = []
    for name, info in cls.model_fields.items():
        defaults[name] = _MISSING if info.is_required() or info.default_factory is not None else info.default
        if info.default_factory is not None:
            factories.append((name, info.default_factory))
    required = frozenset(name for name, info in cls.model_fields.items() if info.is_required())
    found = _TEMPLATES[cls] = (defaults, required, tuple(factories))
    return found


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance built from values that are already of the field types and within their
        constraints (e.g. read from a validated wire model), without validating or copying them.

        Equal to ``cls(**values)`` for such values, with the same ``model_fields_set``, at a fraction
        of the cost (``model_construct`` loops over the fields in Python: it is slower than
        validating). A missing required field raises ``TypeError``; names and values are not checked
        (:func:`always_validate` builds through validation instead, which the tests compare against),
        so a caller whose values may be out of range validates instead (see :meth:`Hit.trusted`).
        """
        if _VALIDATE_TRUSTED[0]:
            return cls(**values)
        return _build(cls, values)


def _build(cls: type[_M], values: dict[str, Any]) -> _M:
    """:meth:`_Frozen.trusted` without the switch."""
    defaults, required, factories = _TEMPLATES.get(cls) or _template(cls)
    if not required <= values.keys():
        raise TypeError(f"{cls.__name__} requires {', '.join(sorted(required - values.keys()))}")
    data = {**defaults, **values}
    for name, factory in factories:
        if name not in values:
            data[name] = factory()
    model = _new(cls)
    _set(model, "__dict__", data)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class Criterion(_Frozen):
    """A qualification criterion (Extruct ``criteria[]``, contract extruct §4): graded 1-5.

    Limits follow Extruct's first-party client (REPO): key starts with a letter and holds letters,
    digits and underscores; name 1-100 characters; criterion 10-500 characters.
    """

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
                     description="Stable key: a letter, then letters, digits, underscores ('has_api').")
    name: str = Field(min_length=1, max_length=100, description="Short label, e.g. 'API Available'.")
    criterion: str = Field(min_length=10, max_length=500, description="What must hold, in words.")


class PersonIdentity(_Frozen):
    """Signals that identify one person, for a lookup (Orbit's identity signals, contract orbit §3.1).

    At least one signal is required; any one suffices.
    """

    linkedin_url: str | None = Field(None, description="A LinkedIn profile URL (https://www.linkedin.com/in/<slug>).")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone_number: str | None = Field(None, pattern=r"^\+?[0-9 ()\-.]{7,20}$", description="E.164 preferred.")
    profile_id: str | None = Field(None, min_length=1, description="An Orbit profile id.")
    urls: tuple[str, ...] = Field((), description="Public http(s) URLs about the person.")
    usernames: tuple[str, ...] = Field((), description="Public usernames (e.g. GitHub).")

    @field_validator("linkedin_url")
    @classmethod
    def _linkedin_profile(cls, value: str | None) -> str | None:
        if value is not None and not LINKEDIN_PROFILE.match(value):
            raise ValueError("must be a LinkedIn profile URL like https://www.linkedin.com/in/<slug>")
        return value

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [url for url in value if not url.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"urls must be http(s) URLs, got {bad[0]!r}")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> PersonIdentity:
        if not any((self.linkedin_url, self.email, self.phone_number, self.profile_id, self.urls,
                    self.usernames)):
            raise ValueError(
                "give at least one of linkedin_url, email, phone_number, profile_id, urls, usernames")
        return self

    def describe(self) -> str:
        """A short human label, e.g. ``linkedin https://www.linkedin.com/in/jane``."""
        parts = [f"{name} {value}" for name, value in (
            ("linkedin", self.linkedin_url), ("email", self.email), ("phone", self.phone_number),
            ("profile", self.profile_id)) if value]
        parts += [f"url {u}" for u in self.urls] + [f"username {u}" for u in self.usernames]
        return "; ".join(parts)


class SearchRequest(_Frozen):
    """One logical deep search, before it is sent to any provider.

    Every rule is checked on construction, and each error is located at the offending field (also
    the cross-field rules: ``filters`` when both filter forms are given, ``identity`` outside people
    mode, ``titles`` etc. in company mode), so its message names the field.

    Raises:
        pydantic.ValidationError: on construction when a field is invalid; the CLI and
            :class:`~aggregator.Aggregator` turn it into :class:`~aggregator.errors.ConfigError`
            naming the field (``ConfigError.from_validation``).
    """

    query: str = Field(min_length=1, max_length=2000,
                       description="Natural-language description of who or what to find.")
    mode: Mode = Field("people", description="'people' or 'company'.")
    max_results: int = Field(100, ge=1, le=MAX_RESULTS_LIMIT,
                             description="Upper bound on records per provider and after merging.")
    providers: tuple[str, ...] | None = Field(
        None, description="Registry names to use; None = every configured provider that supports the mode.")
    strategy: Strategy = Field("all", description="all = fan out; fallback = ordered chain; race = hedged.")
    min_results: int | None = Field(
        None, ge=1, description="fallback/race: records that satisfy (fewer passes a step over).")
    hedge_delay_s: float | None = Field(None, ge=0, allow_inf_nan=False,
                                        description="race: wait before starting the next provider.")
    deadline_s: float = Field(900.0, gt=0, le=86_400, allow_inf_nan=False,
                              description="Overall deadline for the run, seconds (virtual on the sandbox).")
    budget: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="Credit budget for the run (> 0: a budget of 0 allows no paid call); None = unlimited.")
    exclude: tuple[str, ...] = Field(
        (), max_length=1000,
        description="Entities no provider may return: people by LinkedIn URL, public id or a provider's record id; "
                    "companies by domain, LinkedIn company URL or id. Sent to providers that accept them, applied "
                    "by the core to every provider's records before they are reported (aggregator.exclusions).")
    titles: tuple[str, ...] = Field((), max_length=20, description="Structured: current job titles (any of them).")
    companies: tuple[str, ...] = Field((), max_length=20, description="Structured: current employers (any of them).")
    locations: tuple[str, ...] = Field((), max_length=5, description="Structured: places people live (any of them).")
    schools: tuple[str, ...] = Field((), max_length=10, description="Structured: schools attended (any of them).")
    identity: PersonIdentity | None = Field(
        None, description="Look up one person by identity signals instead of searching (people mode).")
    simple_filters: dict[str, Any] | None = Field(
        None, description="A filter search (Mongo-style simple_filters, Sixtyfour): no deep search.")
    filters: dict[str, Any] | None = Field(
        None, description="A filter search in the DSL form ({query, sort?, size?}, Sixtyfour).")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Provider-only inputs by provider name, each validated by that provider's adapter "
                    "(its options_model), e.g. {'extruct': {'criteria': [...]}, 'orbit': {'structured_intent': {...}, "
                    "'run_shape': 'partial_only'}}. Options for a provider that does not run the request are refused.")

    @field_validator("options")
    @classmethod
    def _options_by_provider(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        bad = next((name for name in value if not name.isidentifier() or name != name.lower()), None)
        if bad is not None:
            raise ValueError(f"options are keyed by provider name, got {bad!r}")
        return value

    @field_validator("query")
    @classmethod
    def _strip_query(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("query must not be blank")
        return value

    # Cross-field rules are field validators (fields validate in declaration order, so ``info.data``
    # holds the earlier ones): the error is then located at the field, and its message names it.
    @field_validator("exclude")
    @classmethod
    def _exclusions_apply(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        from aggregator.exclusions import parse_exclusion  # the identity normalizers load on first use

        mode = info.data.get("mode", "people")
        for i, item in enumerate(value):
            try:
                parse_exclusion(item, mode)
            except ValueError as exc:
                raise ValueError(f"[{i}] {exc}") from None
        return value

    @field_validator("titles", "companies", "locations", "schools")
    @classmethod
    def _people_only(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("mode") == "company":
            raise ValueError("is for people searches; company mode does not use it (remove it, or use mode "
                             "'people')")
        value = tuple(v.strip() for v in value)
        if any(not v for v in value):
            raise ValueError("values must not be blank")
        return value

    @field_validator("identity")
    @classmethod
    def _lookup_is_people_mode(cls, value: PersonIdentity | None, info: ValidationInfo) -> PersonIdentity | None:
        if value is None:
            return value
        if info.data.get("mode") == "company":
            raise ValueError("a lookup (identity) is people mode only")
        given = [name for name in STRUCTURED_FIELDS if info.data.get(name)]
        if given:
            raise ValueError(f"a lookup finds one person by identity signals; it cannot also take structured "
                             f"fields ({', '.join(given)}): remove them or search instead")
        from aggregator.exclusions import Exclusions

        excluded = Exclusions.of(info.data.get("exclude", ()), "people")
        linkedin = Person(linkedin_url=value.linkedin_url)
        if excluded.excludes_record(value.profile_id or "") or (
                value.linkedin_url and excluded.matches_entity(linkedin)):
            raise ValueError("the person to look up is excluded (exclude names them): remove the exclusion or "
                             "the lookup, nothing is sent either way")
        return value

    @field_validator("simple_filters", "filters")
    @classmethod
    def _one_kind_of_search(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is None:
            return value
        if info.data.get("identity") is not None:
            raise ValueError("a lookup cannot also be a filter search")
        if info.field_name == "filters" and info.data.get("simple_filters") is not None:
            raise ValueError("give simple_filters or filters, not both")
        given = [name for name in STRUCTURED_FIELDS if info.data.get(name)]
        if given:
            raise ValueError(f"a filter search cannot also take structured fields ({', '.join(given)}): "
                             "express them as filters")
        return value

    # -- structured fields in words -----------------------------------------------------------
    @property
    def has_fields(self) -> bool:
        """True when any structured field (titles, companies, locations, schools) is given."""
        return bool(self.titles or self.companies or self.locations or self.schools)

    @property
    def query_is_placeholder(self) -> bool:
        """True for a query of at most one letter or digit (``x``, ``-``, ``*``): it says nothing, so
        with structured fields it is not sent (the CLI's query argument is required)."""
        return sum(c.isalnum() for c in self.query) <= 1

    def fields_text(self, *, standalone: bool = True) -> str:
        """The structured fields as one phrase, values of a field OR-ed: ``CTO or CEO at Stripe in San
        Francisco or Oakland who studied at MIT`` (``People at Stripe`` without titles; without the
        subject when ``standalone`` is false and it follows a query)."""
        parts = [" or ".join(self.titles) if self.titles else ("People" if standalone else "")]
        for prefix, values in (("at", self.companies), ("in", self.locations), ("who studied at", self.schools)):
            if values:
                parts.append(f"{prefix} {' or '.join(values)}")
        return " ".join(p for p in parts if p)

    @property
    def search_text(self) -> str:
        """What a natural-language provider is sent: the query; with structured fields, the phrase
        composed from them, after the query they refine unless the query is a placeholder."""
        if not self.has_fields:
            return self.query
        if self.query_is_placeholder:
            return self.fields_text()
        return f"{self.query}, {self.fields_text(standalone=False)}"

    @property
    def is_filter_search(self) -> bool:
        """True when the request filters an index instead of starting a deep search."""
        return self.simple_filters is not None or self.filters is not None

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("providers must name at least one provider (or be omitted)")
            if len(set(value)) != len(value):
                raise ValueError("providers must not repeat a name")
        return value


class Evidence(_Frozen):
    """Why a provider returned a record: a graded criterion, an explanation or a snippet."""

    kind: Literal["criterion", "explanation", "snippet", "signal"]
    key: str | None = Field(None, description="Criterion key or signal name.")
    label: str | None = Field(None, description="Human-readable name of the criterion/signal.")
    grade: int | None = Field(None, ge=1, le=5, description="Criterion grade 1-5 (Extruct).")
    text: str | None = Field(None, description="The explanation or snippet.")
    source_urls: tuple[str, ...] = ()

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """:meth:`_Frozen.trusted`, validating instead when ``grade`` is outside 1-5 (so it raises as before)."""
        grade = values.get("grade")
        if _VALIDATE_TRUSTED[0] or (grade is not None and not (type(grade) is int and 1 <= grade <= 5)):
            return cls(**values)
        return _build(cls, values)


class Person(_Frozen):
    """A person as one provider (or the merge) describes them. Unknown fields are None."""

    kind: Literal["person"] = "person"
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = Field(None, description="Current job title.")
    headline: str | None = None
    seniority: str | None = Field(None, description="e.g. 'VP', 'Director', 'CXO' (Sixtyfour vocabulary).")
    job_function: str | None = None
    company_name: str | None = None
    company_domain: str | None = None
    company_linkedin_url: str | None = None
    location: str | None = Field(None, description="Location as the provider wrote it.")
    city: str | None = None
    region: str | None = None
    country: str | None = None
    linkedin_url: str | None = Field(None, description="Normalized https://www.linkedin.com/in/<slug>.")
    email: str | None = None
    phone: str | None = None
    github_username: str | None = None
    school: str | None = None
    skills: tuple[str, ...] = ()


class Company(_Frozen):
    """A company as one provider (or the merge) describes it. Unknown fields are None."""

    kind: Literal["company"] = "company"
    name: str | None = None
    domain: str | None = Field(None, description="Registered domain, lower case, e.g. 'acme.com'.")
    website: str | None = None
    linkedin_url: str | None = None
    description: str | None = None
    industry: str | None = None
    categories: tuple[str, ...] = ()
    founded_year: int | None = None
    employee_count: int | None = None
    employee_range: str | None = Field(None, description="Size bucket, e.g. '11-50'.")
    hq_city: str | None = None
    hq_region: str | None = None
    hq_country: str | None = None
    hq_country_iso2: str | None = None
    funding_stage: str | None = Field(None, description="Last round, e.g. 'Series B'.")
    last_funding_amount_usd: int | None = None


Entity = Annotated[Person | Company, Field(discriminator="kind")]


class Hit(_Frozen):
    """One record from one provider, with provenance."""

    provider: str
    provider_record_id: str = Field(description="The provider's id for this record.")
    job_id: str | None = Field(None, description="The provider job that produced it.")
    rank: int = Field(ge=1, description="1-based position in the provider's result order.")
    score: float | None = Field(None, ge=0, le=1, description="Provider relevance scaled to 0..1.")
    entity: Entity
    evidence: tuple[Evidence, ...] = ()
    source_urls: tuple[str, ...] = ()
    raw: dict[str, Any] = Field(default_factory=dict, description="The provider's record as received.")
    retrieved_at: datetime

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """:meth:`_Frozen.trusted` (``raw`` is kept, not copied), validating instead when ``rank`` is not
        a positive int or ``score`` is outside 0..1 (so such a hit raises as before)."""
        rank, score = values.get("rank"), values.get("score")
        if _VALIDATE_TRUSTED[0] or not (type(rank) is int and rank >= 1) or (
                score is not None and not 0.0 <= score <= 1.0):
            return cls(**values)
        return _build(cls, values)


class MergedRecord(_Frozen):
    """One real-world entity after entity resolution, with every provider's hit."""

    record_id: str = Field(description="Stable key: normalized LinkedIn URL, email or domain.")
    entity: Entity = Field(description="Consolidated entity (first non-empty value by provider rank).")
    hits: tuple[Hit, ...]
    providers: tuple[str, ...] = Field(description="Providers that returned it, best rank first.")
    field_provenance: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Field name -> providers that supplied the chosen value.")
    conflicts: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Field name -> {provider: differing value}.")
    consensus: int = Field(ge=1, description="How many providers returned this entity.")
    best_rank: int = Field(ge=1)


class FilterField(_Frozen):
    """One field a filter search can use (Sixtyfour ``filter-capabilities``, contract sixtyfour §2.1)."""

    field: str
    field_type: str = Field(description="Index mapping type: text, keyword, long, double, boolean, date...")
    nested_path: str | None = None
    queryable: bool = True
    sortable: bool = False
    rangeable: bool = False
    supports_top_values: bool = False


class FilterCapabilities(_Frozen):
    """What a provider's filter search accepts in one mode."""

    provider: str
    mode: Mode
    fields: tuple[FilterField, ...]
    operators: tuple[str, ...] = Field(description="simple_filters operators, e.g. '$eq', '$elemMatch'.")
    nested_paths: tuple[str, ...] = ()
    limits: dict[str, int] = Field(default_factory=dict, description="max_query_depth, max_clause_count...")

    def field(self, name: str) -> FilterField | None:
        """The field called ``name`` (a ``.keyword`` suffix is ignored), or None."""
        base = name.removesuffix(".keyword")
        return next((f for f in self.fields if f.field == base), None)


class FieldValue(_Frozen):
    """One top value of a field, with its document count."""

    value: str | int | float | bool | None = Field(description="None is the 'missing' bucket.")
    count: int = Field(ge=0)
    percent_of_scope: float = Field(ge=0, le=1)
    filter_snippet: dict[str, Any] | None = Field(None, description="A ready exact-match DSL clause.")


class FieldValues(_Frozen):
    """Top values of one field within a scope (Sixtyfour ``filter-field-values``, contract sixtyfour §2.2)."""

    provider: str
    mode: Mode
    field: str
    total_scoped_documents: int = Field(ge=0)
    values: tuple[FieldValue, ...]


class ErrorInfo(_Frozen):
    """A serializable summary of the error that ended or degraded a provider's part of a run."""

    type: str = Field(description="Exception class name, e.g. 'RateLimitedError'.")
    message: str
    endpoint: str | None = None
    status: int | None = None
    retryable: bool = False


class ProviderOutcome(_Frozen):
    """How one provider did in one run."""

    provider: str
    status: OutcomeStatus
    sandbox: bool = Field(False, description="True when this provider ran against the sandbox.")
    job_id: str | None = None
    records: int = Field(0, ge=0, description="Hits normalized from this provider.")
    pages: int = Field(0, ge=0, description="Provider reads: result pages, downloads or profiles.")
    credits: float = Field(0.0, ge=0, description="Credits charged (reported or per the cost model).")
    credits_remaining: float | None = Field(
        None, description="The balance the provider last reported (e.g. Orbit's credits header).")
    retries: int = Field(0, ge=0)
    excluded: int = Field(
        0, ge=0, description="Records this provider returned (or would have had read) that matched the request's "
                             "exclusions and were dropped by us before being journaled or reported.")
    exclusions_sent: int = Field(
        0, ge=0, description="Exclusions sent in this provider's request, applied by the provider itself (it "
                             "returns none of them, so they are not counted in 'excluded').")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_s: float | None = None
    time_to_first_result_s: float | None = None
    error: ErrorInfo | None = None
    note: str | None = Field(None, description="Why it was skipped, or what was partial.")


class CacheInfo(_Frozen):
    """Where a cached report came from (:mod:`aggregator.cache`): the earlier run that answered it."""

    run_id: str = Field(description="The run whose report this is (it ran the providers; this answer called none).")
    cached_at: datetime = Field(description="Wall-clock (UTC) time that run finished.")
    age_s: float = Field(ge=0, description="Real seconds between that run's finish and this answer.")


class SearchReport(_Frozen):
    """The result of one run: the request, each provider's outcome and the merged records.

    ``cached`` is set when the report was answered from the result cache (:mod:`aggregator.cache`): it is
    then the earlier run's report (its ``run_id``, records and provenance) with every outcome's credits 0.
    """

    run_id: str
    request: SearchRequest
    started_at: datetime
    finished_at: datetime
    elapsed_s: float
    wall_s: float | None = Field(
        None, description="Real (wall-clock) seconds the run took in the process that finished it; "
        "``elapsed_s`` is on the run's clock (virtual seconds on the sandbox). None when not measured.")
    sandbox: bool
    outcomes: tuple[ProviderOutcome, ...]
    records: tuple[MergedRecord, ...]
    answered_by: tuple[str, ...] = Field((), description="Providers whose records the strategy kept.")
    cached: CacheInfo | None = Field(
        None, description="Set when answered from the result cache: the source run and its age; no provider "
                          "was called and nothing was paid.")

    @property
    def total_credits(self) -> float:
        return sum(o.credits for o in self.outcomes)

    @property
    def delivered(self) -> bool:
        """True when at least one provider answered (found, partial or no_result)."""
        return any(o.status in ("found", "partial", "no_result") for o in self.outcomes)

    def raise_for_status(self) -> SearchReport:
        """Raise :class:`~aggregator.errors.SearchFailedError` if no provider delivered; else self."""
        if not self.delivered:
            from aggregator.errors import SearchFailedError

            raise SearchFailedError(self.outcomes)
        return self

    def outcome(self, provider: str) -> ProviderOutcome:
        """The outcome of ``provider``. Raises KeyError if it took no part in the run."""
        for item in self.outcomes:
            if item.provider == provider:
                return item
        raise KeyError(provider)
