"""Property tests: every provider's parse + normalize path, fed mutated documented payloads.

For each endpoint an adapter reads, the documented payload (``tests/fixtures/<provider>/``) is mutated —
keys dropped, values nulled or swapped for other JSON types, numbers as strings, lists for objects and back,
``{"element": X}`` wrappers, huge / empty / unicode strings, extra keys — then serialized, sometimes truncated
or garbled, and served as that endpoint's response body. The adapter's own method (submit, poll, fetch,
find_submitted, extend, filter_capabilities, filter_values) runs over the real :class:`ProviderHTTPClient`
(its JSON parsing included; only the socket is replaced), with every other endpoint answering its documented
payload. The method must either return well-formed values (hits that validate and serialize) or raise
:class:`ProviderProtocolError` naming the provider and the mutated endpoint — never any other exception,
never a loop.

Two generators: a deterministic sweep of every single mutation of every field of every payload (each
path x each of ``SWAPS``, dropped, wrapped in a list or in ``{"element": X}``), and hypothesis for
combinations, truncated and garbled bytes. Hypothesis runs derandomized without a database, so CI sees the
same examples every run.
"""

from __future__ import annotations

import asyncio
import copy
import csv
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from aggregator.config import HttpSettings, RetrySettings, load_settings
from aggregator.contract import JobRef, Limits, Page, ProviderAdapter, Response
from aggregator.errors import ProviderProtocolError
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.limits import ProviderLimiter
from aggregator.models import FieldValues, FilterCapabilities, Hit, PersonIdentity, SearchRequest
from aggregator.retry import RetryPolicy
from providers.extruct.adapter import ExtructAdapter
from providers.orbit.adapter import OrbitAdapter
from providers.sixtyfour.adapter import SixtyfourAdapter
from providers.sixtyfour.wire import hit_from_csv, rows_from_csv
from tests.fakes import FakeClock

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = load_settings(env={})
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_CALLS = 40  # a scenario makes a handful of calls; more means the adapter loops on a bad body
NOW = datetime(2026, 11, 21, tzinfo=UTC)
EXPORT_LOOPS = "an unknown export status was polled forever"  # regressions the fuzz found, kept as examples
CSV_ERRORS = "csv.Error escaped the CSV download (a huge cell, a bare \\r)"


def fixture(provider: str, name: str) -> Any:
    data = (FIXTURES / provider / name).read_bytes()
    return orjson.loads(data) if name.endswith(".json") else data.decode()


# -- mutations -------------------------------------------------------------------------------------
LEAF = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
ANY_JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=3), max_leaves=6)
ODD_TEXT = st.sampled_from(["", " ", "\x00", "x" * 200_000, "😀" * 40, "\u202e\u0000ü", "null", "1e999", "-1", "²",
                            "9" * 5000, "http://[::1", "https://", "linkedin.com/in/", "a,b\n\"c", "2026-13-45T99:00"])
RAW = {"\x00raw:inf": b"1e999", "\x00raw:bigint": b"123456789012345678901234567890", "\x00raw:-0": b"-0.0"}
SWAPS: tuple[Any, ...] = (None, 7, -1, 1.5, "", "x", True, [], {}, [{}], ["x"], {"a": 1}, "2026-03-01T10:15:00",
                          "😀\u202e", *RAW)  # the RAW keys become those JSON literals in the body
OPS = ("drop", "null", "replace", "odd_text", "text", "stringify", "numberify", "listify", "unlist", "dictify",
       "element", "empty", "add_key")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return doc


def _mutation(draw: st.DrawFn, value: Any, op: str) -> Any:
    """The value at a path after ``op`` (``_DROP`` removes it)."""
    if op == "drop":
        return _DROP
    if op == "null":
        return None
    if op == "replace":
        return draw(ANY_JSON)
    if op == "odd_text":
        return draw(ODD_TEXT)
    if op == "text":
        return draw(st.text(max_size=50))
    if op == "stringify":
        return orjson.dumps(value).decode() if not isinstance(value, str) else value * 2
    if op == "numberify":
        return draw(st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False))
    if op == "listify":
        return [value]
    if op == "unlist":
        if isinstance(value, list):
            return value[0] if value else {}
        return list(value.values()) if isinstance(value, dict) else value
    if op == "dictify":
        return {"value": value}
    if op == "element":
        return {"element": value}
    if op == "empty":
        return type(value)() if isinstance(value, str | list | dict) else ""
    if isinstance(value, dict):  # add_key
        return {**value, draw(st.text(max_size=8)): draw(ANY_JSON)}
    return value


_DROP = object()


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` after one to three mutations at random paths."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        target = doc
        for key in path:
            target = target[key]
        new = _mutation(draw, target, draw(st.sampled_from(OPS)))
        if new is _DROP:
            if not path:
                return None
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        else:
            doc = _replace(doc, path, new)
    return doc


@st.composite
def json_body(draw: st.DrawFn, base: Any) -> bytes:
    """A response body: a mutated document, or the documented one truncated or garbled as bytes."""
    kind = draw(st.sampled_from(("mutated", "mutated", "mutated", "mutated", "truncated", "garbled")))
    if kind == "mutated":
        return orjson.dumps(draw(mutated(base)))
    raw = orjson.dumps(base)
    at = draw(st.integers(0, len(raw) - 1))
    if kind == "truncated":
        return raw[:at]
    return raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at + 1:]


@st.composite
def csv_body(draw: st.DrawFn, base: str) -> bytes:
    """A CSV body: truncated, with text inserted (quotes, separators, NULs, huge cells) or bytes garbled."""
    kind = draw(st.sampled_from(("truncated", "inserted", "inserted", "huge_cell", "extra_columns", "garbled")))
    at = draw(st.integers(0, len(base)))
    if kind == "truncated":
        text = base[:at]
    elif kind == "inserted":
        text = base[:at] + draw(st.text(alphabet=st.sampled_from(',"\n\r\x00;a\u00fc😀 '), max_size=12)) + base[at:]
    elif kind == "huge_cell":
        text = base[:at] + "y" * 140_000 + base[at:]
    elif kind == "extra_columns":
        text = base.rstrip("\n") + ",extra,cells" * draw(st.integers(1, 3)) + "\n"
    else:
        raw = base.encode()
        return raw[: at // 2] + draw(st.binary(min_size=1, max_size=4)) + raw[at // 2 + 1:]
    return text.encode()


# -- the real client, with canned bodies instead of sockets ----------------------------------------
class LoopingError(AssertionError):
    """The adapter kept calling: a bad body must end in an error, not a poll loop."""


class CannedClient(ProviderHTTPClient):
    """:class:`ProviderHTTPClient` (limits, retries, JSON parsing) answering each endpoint with a fixed body."""

    def __init__(self, adapter: type[ProviderAdapter], bodies: Mapping[str, bytes]) -> None:
        clock = FakeClock()
        super().__init__(provider=adapter.name, base_url="http://canned.invalid", http=HttpClient(HttpSettings()),
                         limiter=ProviderLimiter(adapter.name, Limits(), clock),
                         retry=RetryPolicy(RetrySettings(max_attempts=1), clock), clock=clock,
                         api_key=SecretStr("canned-key"), auth_headers=adapter.auth_headers)
        self.bodies = bodies
        self.sent: list[str] = []

    async def _send(self, method: str, url: str, endpoint: str, body: bytes | None,
                    params: Mapping[str, str] | None, headers: Mapping[str, str], idempotent: bool,
                    expect: Literal["json", "text"], retry_on: frozenset[int], *, follow_redirects: bool) -> Response:
        self.sent.append(endpoint)
        if len(self.sent) > MAX_CALLS:
            raise LoopingError(f"{len(self.sent)} calls, the last to {endpoint}")
        ctx: dict[str, Any] = {"provider": self.provider, "endpoint": endpoint}
        return Response(status=200, headers={}, data=self._parse(self.bodies[endpoint], expect, idempotent, ctx))


# -- scenarios -------------------------------------------------------------------------------------
Run = Callable[[Any], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class Scenario:
    """``run(adapter)`` reads ``target`` (whose body is mutated); ``served`` answers the other endpoints."""

    adapter: type[ProviderAdapter]
    target: str
    base: Any
    run: Run
    served: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    body: Literal["json", "csv"] = "json"
    pending: frozenset[str] = frozenset()  # statuses under which polling on is right (the run's deadline ends it)
    sweep: bool = True  # False: the same payload through the same normalizer is swept in another scenario

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"Scenario({self.adapter.name}: {self.target})"


def job(provider: str, mode: Literal["people", "company"] = "people", **extra: Any) -> JobRef:
    return JobRef(provider=provider, job_id="job-1", idempotency_key="key-1", mode=mode, submitted_at=NOW,
                  extra=extra)


S64 = "sixtyfour"
S64_START, S64_STATUS = "POST /search/start-deep-search", "GET /search/status/{task_id}"
S64_QUERY = "POST /search/query"
S64_DOWNLOAD, S64_SIGNED, S64_EXPORT = "GET /search/download", "GET <signed download URL>", "POST /search/export"
S64_CAPS, S64_VALUES = "GET /search/filter-capabilities", "POST /search/filter-field-values"
S64_CSV_PEOPLE = {S64_DOWNLOAD: fixture(S64, "download_response.json"), S64_SIGNED: fixture(S64, "results_people.csv")}
S64_DONE: dict[str, Any] = {"search_id": "s-1", "max_results": 50, "exclude": ["acme.com"]}
EX = "extruct"
EX_CREATE, EX_LIST, EX_GET = "POST /v1/discovery_tasks", "GET /v1/discovery_tasks", "GET /v1/discovery_tasks/{task_id}"
EX_RESULTS, EX_RESUME = "GET /v1/discovery_tasks/{task_id}/results", "POST /v1/discovery_tasks/{task_id}/resume"
EX_TASK = fixture(EX, "task_in_progress.json")
OB = "orbit"
OB_START, OB_STATUS = "POST /v2/developer/deep-search", "GET /v2/developer/deep-search/{requestId}"
OB_PROFILE = "GET /v2/developer/profiles/{id}"
SEARCH = SearchRequest(query="VP of Engineering in New York", max_results=20)
LOOKUP = SearchRequest(query="lookup", identity=PersonIdentity(email="ada@example.com"))
COMPANIES = SearchRequest(query=EX_TASK["query"], mode="company", max_results=EX_TASK["desired_num_results"])

SCENARIOS = {
    "sixtyfour-start": Scenario(SixtyfourAdapter, S64_START, fixture(S64, "start_response.json"),
                                lambda a: a.submit(SEARCH, "key-1")),
    "sixtyfour-status-completed": Scenario(SixtyfourAdapter, S64_STATUS, fixture(S64, "status_completed.json"),
                                           lambda a: a.poll(job(S64))),
    "sixtyfour-status-running": Scenario(SixtyfourAdapter, S64_STATUS, fixture(S64, "status_running.json"),
                                         lambda a: a.poll(job(S64))),
    "sixtyfour-query-company": Scenario(SixtyfourAdapter, S64_QUERY, fixture(S64, "query_response_company.json"),
                                        lambda a: a.fetch(job(S64, "company", **S64_DONE), None)),
    "sixtyfour-query-company-full": Scenario(SixtyfourAdapter, S64_QUERY,
                                             fixture(S64, "query_response_company_full.json"),
                                             lambda a: a.fetch(job(S64, "company", **S64_DONE), None)),
    "sixtyfour-query-people": Scenario(SixtyfourAdapter, S64_QUERY, fixture(S64, "query_response_people.json"),
                                       lambda a: a.fetch(job(S64, **S64_DONE), {"cursor": "c", "seen": ["x"]})),
    "sixtyfour-download": Scenario(SixtyfourAdapter, S64_DOWNLOAD, fixture(S64, "download_response.json"),
                                   lambda a: a.fetch(job(S64, resource_handle_id="rh"), None),
                                   served=S64_CSV_PEOPLE, settings={"fetch_via": "csv"}),
    "sixtyfour-csv-people": Scenario(SixtyfourAdapter, S64_SIGNED, fixture(S64, "results_people.csv"),
                                     lambda a: a.fetch(job(S64, resource_handle_id="rh"), None),
                                     served=S64_CSV_PEOPLE, settings={"fetch_via": "csv"}, body="csv"),
    "sixtyfour-csv-company": Scenario(SixtyfourAdapter, S64_SIGNED, fixture(S64, "results_company.csv"),
                                      lambda a: a.fetch(job(S64, "company", resource_handle_id="rh"), None),
                                      served=S64_CSV_PEOPLE, settings={"fetch_via": "csv"}, body="csv"),
    "sixtyfour-export-start": Scenario(SixtyfourAdapter, S64_EXPORT, fixture(S64, "start_response.json"),
                                       lambda a: a.fetch(job(S64, **S64_DONE), None), settings={"fetch_via": "export"},
                                       served={**S64_CSV_PEOPLE, S64_STATUS: fixture(S64, "status_completed.json")}),
    "sixtyfour-export-status": Scenario(SixtyfourAdapter, S64_STATUS, fixture(S64, "status_completed.json"),
                                        lambda a: a.fetch(job(S64, **S64_DONE), None), settings={"fetch_via": "export"},
                                        served={**S64_CSV_PEOPLE, S64_EXPORT: fixture(S64, "start_response.json")},
                                        pending=frozenset({"queued", "pending", "running"})),
    "sixtyfour-filter-capabilities": Scenario(SixtyfourAdapter, S64_CAPS, fixture(S64, "filter_capabilities.json"),
                                              lambda a: a.filter_capabilities("company")),
    "sixtyfour-filter-values": Scenario(SixtyfourAdapter, S64_VALUES, fixture(S64, "filter_field_values.json"),
                                        lambda a: a.filter_values("employees_count", top_k=5),
                                        served={S64_CAPS: fixture(S64, "filter_capabilities.json")}),
    "extruct-create": Scenario(ExtructAdapter, EX_CREATE, EX_TASK, lambda a: a.submit(COMPANIES, "key-1")),
    "extruct-status": Scenario(ExtructAdapter, EX_GET, EX_TASK, lambda a: a.poll(job(EX, "company"))),
    "extruct-list": Scenario(ExtructAdapter, EX_LIST, [EX_TASK, {**EX_TASK, "id": "other"}],
                             lambda a: a.find_submitted(COMPANIES, "key-1", datetime(2026, 1, 1, tzinfo=UTC))),
    "extruct-results": Scenario(ExtructAdapter, EX_RESULTS, fixture(EX, "results_done.json"),
                                lambda a: a.fetch(job(EX, "company", status="done", desired_num_results=100), None)),
    "extruct-results-running": Scenario(ExtructAdapter, EX_RESULTS, fixture(EX, "results_done.json"),
                                        lambda a: a.fetch(job(EX, "company", status="in_progress"), {"seen": ["a"]}),
                                        sweep=False),
    "extruct-resume": Scenario(ExtructAdapter, EX_RESUME, EX_TASK,
                               lambda a: a.extend(job(EX, "company", desired_num_results=100), 10)),
    "orbit-start": Scenario(OrbitAdapter, OB_START, fixture(OB, "start_started.json"),
                            lambda a: a.submit(SEARCH, "key-1")),
    "orbit-start-completed": Scenario(OrbitAdapter, OB_START, fixture(OB, "start_completed.json"),
                                      lambda a: a.submit(LOOKUP, "key-1")),
    "orbit-status-candidates": Scenario(OrbitAdapter, OB_STATUS, fixture(OB, "status_candidates_running.json"),
                                        lambda a: a.poll(job(OB))),
    "orbit-status-completed": Scenario(OrbitAdapter, OB_STATUS, fixture(OB, "status_completed.json"),
                                       lambda a: a.poll(job(OB))),
    "orbit-status-failed": Scenario(OrbitAdapter, OB_STATUS, fixture(OB, "status_failed.json"),
                                    lambda a: a.poll(job(OB))),
    "orbit-status-then-profiles": Scenario(OrbitAdapter, OB_STATUS, fixture(OB, "status_candidates_running.json"),
                                           lambda a: a.fetch(job(OB, run_shape="candidate_discovery"), None),
                                           served={OB_PROFILE: fixture(OB, "profile.json")}),
    "orbit-profile-candidate": Scenario(OrbitAdapter, OB_PROFILE, fixture(OB, "profile.json"),
                                        lambda a: a.fetch(job(OB, run_shape="candidate_discovery"), None),
                                        served={OB_STATUS: fixture(OB, "status_candidates_running.json")}),
    "orbit-profile-lookup": Scenario(OrbitAdapter, OB_PROFILE, fixture(OB, "profile.json"),
                                     lambda a: a.fetch(job(OB, run_shape="partial_plus_full", status="completed",
                                                           profile_id="p-1"), None), sweep=False),
}
REGRESSIONS = {  # scenario -> (what the fuzz once found, a body that showed it): always tried first
    "sixtyfour-export-status": (EXPORT_LOOPS, orjson.dumps({**fixture(S64, "status_completed.json"), "status": "?"})),
    "sixtyfour-csv-people": (CSV_ERRORS, b"full_name\n" + b"y" * 140_000 + b"\n"),
    "sixtyfour-csv-company": (CSV_ERRORS, b"company_name\nAcme\r,\"x\n"),
}


def _encode(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def _check_result(result: Any, provider: str) -> None:
    """What a successful read returned is well-formed: validated hits that serialize."""
    hits: tuple[Hit, ...] = result.hits if isinstance(result, Page) else ()
    for hit in hits:
        assert isinstance(hit, Hit) and hit.provider == provider
        assert orjson.loads(hit.model_dump_json())["provider"] == provider  # a report can be written from it
    if isinstance(result, FilterCapabilities | FieldValues):
        result.model_dump_json()


def _run_once(scenario: Scenario, body: bytes) -> None:
    name = scenario.adapter.name
    prov = SETTINGS.providers[name].model_copy(update=scenario.settings)
    bodies = {endpoint: _encode(value) for endpoint, value in scenario.served.items()}
    client = CannedClient(scenario.adapter, {**bodies, scenario.target: body})
    adapter = scenario.adapter(client, prov)
    try:
        result: Any = asyncio.run(scenario.run(adapter))
    except ProviderProtocolError as exc:
        assert exc.provider == name, exc
        assert exc.endpoint == scenario.target, exc  # the other endpoints answered as documented
        return
    except LoopingError:
        if _status(body) not in scenario.pending:
            raise
        return
    _check_result(result, name)


def _status(body: bytes) -> Any:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data.get("status") if isinstance(data, dict) else None


def test_every_documented_payload_reads_cleanly() -> None:
    """The unmutated payloads succeed, so a ProviderProtocolError in the fuzz is the mutation's doing."""
    for scenario in SCENARIOS.values():
        name = scenario.adapter.name
        prov = SETTINGS.providers[name].model_copy(update=scenario.settings)
        bodies = {endpoint: _encode(value) for endpoint, value in scenario.served.items()}
        client = CannedClient(scenario.adapter, {**bodies, scenario.target: _encode(scenario.base)})
        _check_result(asyncio.run(scenario.run(scenario.adapter(client, prov))), name)


def _scenarios(body: str | None = None, sweep: bool = False) -> list[Any]:
    return [pytest.param(s, id=key) for key, s in SCENARIOS.items()
            if (body is None or s.body == body) and (s.sweep or not sweep)]


def single_mutations(base: Any) -> Iterator[tuple[tuple[Any, ...], bytes]]:
    """Every path of ``base`` with each single change: each of ``SWAPS``, dropped, ``[X]``, ``{"element": X}``."""
    for path in list(_paths(base)):
        value = base
        for key in path:
            value = value[key]
        changes = [*SWAPS, [value], {"element": value}, _DROP if path else None]
        for change in changes:
            doc = copy.deepcopy(base)
            if change is _DROP:
                parent = doc
                for key in path[:-1]:
                    parent = parent[key]
                del parent[path[-1]]
            else:
                doc = _replace(doc, path, copy.deepcopy(change))
            body = orjson.dumps(doc)
            for marker, literal in RAW.items():
                body = body.replace(orjson.dumps(marker), literal)
            yield path, body


@pytest.mark.parametrize("scenario", _scenarios("json", sweep=True))
def test_every_single_field_mutation_parses_or_raises_a_protocol_error(scenario: Scenario) -> None:
    for path, body in single_mutations(scenario.base):
        try:
            _run_once(scenario, body)
        except Exception as exc:
            raise AssertionError(f"{scenario}: body {body[:300]!r} (changed at {path}) raised {exc!r}") from exc


@pytest.mark.parametrize("scenario", _scenarios())
def test_mutated_payloads_parse_or_raise_a_protocol_error_naming_the_endpoint(scenario: Scenario) -> None:
    strategy = csv_body(scenario.base) if scenario.body == "csv" else json_body(scenario.base)

    known = next((failing for key, (_, failing) in REGRESSIONS.items() if SCENARIOS[key] is scenario), None)

    @FUZZ
    @given(body=strategy)
    def check(body: bytes) -> None:
        _run_once(scenario, body)

    (example(body=known)(check) if known is not None else check)()


@pytest.mark.parametrize(("mode", "name"), [("people", "results_people.csv"), ("company", "results_company.csv")])
@FUZZ
@given(data=st.data())
def test_mutated_csv_rows_normalize_or_raise_a_protocol_error(mode: Literal["people", "company"], name: str,
                                                               data: st.DataObject) -> None:
    """The CSV half of the download path, pure: ``rows_from_csv`` then ``hit_from_csv`` for every row."""
    text = data.draw(csv_body(fixture(S64, name)), label="body").decode("utf-8", "replace")
    try:
        rows = rows_from_csv(text, S64_SIGNED)
    except ProviderProtocolError as exc:
        assert (exc.provider, exc.endpoint) == (S64, S64_SIGNED)
        return
    for rank, row in enumerate(rows, start=1):
        hit = hit_from_csv(row, mode=mode, rank=rank, job_id="job-1", retrieved_at=NOW)
        assert orjson.loads(hit.model_dump_json())["rank"] == rank


def test_a_csv_cell_over_the_field_limit_is_a_protocol_error() -> None:
    with pytest.raises(ProviderProtocolError, match="unreadable CSV"):
        rows_from_csv("a\n" + "y" * 140_000 + "\n", S64_SIGNED)
    assert csv.field_size_limit() < 140_000  # the case above exercises the limit
