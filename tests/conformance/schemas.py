"""Validate emulator responses against the providers' published response schemas (issue 15, item 6).

Each provider's schema document lives in ``tests/fixtures/<provider>/`` with a ``SOURCE.md`` that
names where it came from:

- Sixtyfour: ``openapi.json``, the search routes of Sixtyfour's published OpenAPI 3.1 document (a
  verbatim subset of the mirror soenneker/soenneker.sixtyfour.openapiclient).
- Extruct, Orbit: ``response-schemas.json``, OpenAPI-shaped documents written from the providers'
  published reference pages and example payloads (neither OpenAPI document is available offline).

:func:`check` takes ``(provider, "METHOD /route/{template}", status, body)``, finds the response
schema of that route and status in the document (exact status, then ``4XX``-style ranges, then
``default``), resolves its ``$ref``\\ s with :mod:`referencing` and validates the body with
:mod:`jsonschema` (Draft 2020-12, which OpenAPI 3.1 uses). OpenAPI 3.0 leftovers are normalized
first (``nullable: true`` becomes a ``null`` alternative; boolean ``exclusiveMinimum`` /
``exclusiveMaximum``). A route, status or media type the document does not describe is
:attr:`Verdict.NOT_DESCRIBED`: counted, never a failure.

``tests/fixtures/<provider>/overrides.json`` may correct the published document where the research
notes record that it contradicts the provider's documented or observed behaviour: an explicit list
of JSON-pointer edits, each with its reason and citation (never a blanket skip).

Validators are compiled once per (provider, route, status) and cached.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final

import jsonschema  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "DOCUMENTS",
    "FIXTURES",
    "Override",
    "Result",
    "Verdict",
    "Violation",
    "check",
    "document",
    "normalize",
    "overrides",
]

FIXTURES: Final = Path(__file__).resolve().parent.parent / "fixtures"
DOCUMENTS: Final[Mapping[str, str]] = {
    "sixtyfour": "openapi.json",
    "extruct": "response-schemas.json",
    "orbit": "response-schemas.json",
}
OVERRIDES_FILE: Final = "overrides.json"
MAX_VIOLATIONS: Final = 5  # per response, the most relevant first
_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{[^}/]*\}")
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json$")


class Verdict(StrEnum):
    """What :func:`check` concluded about one response."""

    VALID = "valid"
    INVALID = "invalid"
    NOT_DESCRIBED = "not described"
    NOT_JSON = "not json"


@dataclass(frozen=True)
class Violation:
    """One schema error: where in the body (``$.results[0].id``), the schema keyword path, and the message."""

    instance_path: str
    schema_path: str
    message: str


@dataclass(frozen=True)
class Result:
    """The verdict on one response, with the schema location used (``"/search/query" post 200``)."""

    verdict: Verdict
    described_by: str = ""
    violations: tuple[Violation, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Override:
    """One documented correction of a published document (see module docstring)."""

    op: str
    path: str
    reason: str
    citation: str
    value: Any = None


def overrides(provider: str) -> tuple[Override, ...]:
    """The overrides recorded in ``tests/fixtures/<provider>/overrides.json`` (none if absent)."""
    path = FIXTURES / provider / OVERRIDES_FILE
    if not path.exists():
        return ()
    raw = json.loads(path.read_text(encoding="utf-8"))
    found: list[Override] = []
    for item in raw["overrides"]:
        if item["op"] not in ("replace", "add", "remove"):
            raise ValueError(f"{path}: unsupported op {item['op']!r}")
        if not item.get("reason") or not item.get("citation"):
            raise ValueError(f"{path}: override {item['path']} needs a reason and a citation")
        found.append(Override(op=item["op"], path=item["path"], reason=item["reason"],
                              citation=item["citation"], value=item.get("value")))  # fmt: skip
    return tuple(found)


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _apply(doc: dict[str, Any], override: Override) -> None:
    tokens = [_unescape(t) for t in override.path.split("/")[1:]]
    if not tokens:
        raise ValueError(f"override path {override.path!r} must point inside the document")
    parent: Any = doc
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if override.op == "remove":
            del parent[index]
        elif override.op == "add":
            parent.insert(index, copy.deepcopy(override.value))
        else:
            parent[index] = copy.deepcopy(override.value)
        return
    if override.op in ("replace", "remove") and last not in parent:
        raise KeyError(f"override {override.op} {override.path}: nothing there to {override.op}")
    if override.op == "remove":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(override.value)


def normalize(node: Any) -> Any:
    """A copy of ``node`` with OpenAPI 3.0 schema keywords turned into JSON Schema 2020-12.

    ``nullable: true`` adds ``null`` to ``type`` (or to ``enum``, or wraps the rest in ``anyOf``
    with ``{"type": "null"}``; with neither ``type`` nor ``enum`` the schema already accepts null);
    boolean ``exclusiveMinimum``/``exclusiveMaximum`` become the numeric 2020-12 forms. Every other
    keyword is kept (``example``, ``discriminator``... are annotations to a validator).
    """
    if isinstance(node, list):
        return [normalize(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: normalize(value) for key, value in node.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)
    if out.get("nullable") is True:
        del out["nullable"]
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types if "null" in types else [*types, "null"]
        elif "enum" in out:
            out["enum"] = out["enum"] if None in out["enum"] else [*out["enum"], None]
        elif any(key in out for key in ("$ref", "anyOf", "oneOf", "allOf", "const")):
            keep = {k: v for k, v in out.items() if k not in ("description", "title", "example", "default")}
            notes = {k: v for k, v in out.items() if k in ("description", "title", "example", "default")}
            out = {**notes, "anyOf": [keep, {"type": "null"}]}
    elif out.get("nullable") is False:
        del out["nullable"]
    return out


@cache
def document(provider: str) -> dict[str, Any]:
    """The provider's schema document: loaded, overridden, normalized (cached; do not mutate)."""
    name = DOCUMENTS.get(provider)
    if name is None:
        raise KeyError(f"no schema document for provider {provider!r}")
    doc = json.loads((FIXTURES / provider / name).read_text(encoding="utf-8"))
    for override in overrides(provider):
        _apply(doc, override)
    normalized: dict[str, Any] = normalize(doc)
    return normalized


def _template(path: str) -> str:
    """``/search/status/{task_id}`` -> ``/search/status/{}`` (path parameter names do not matter)."""
    return _PARAM.sub("{}", path)


@dataclass
class _Provider:
    """One provider's document, its ``$ref`` registry, its operations and compiled validators."""

    name: str
    uri: str
    doc: dict[str, Any]
    registry: Registry[Any]
    operations: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    validators: dict[tuple[str, int, str], tuple[Any, str] | None] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str) -> _Provider:
        doc = document(name)
        uri = f"urn:conformance:{name}"
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        provider = cls(name=name, uri=uri, doc=doc, registry=Registry().with_resource(uri, resource))
        for path, item in doc.get("paths", {}).items():
            for method in _METHODS:
                if method in item:
                    provider.operations[(method, _template(path))] = (path, method)
        return provider

    def locate(self, route: str, status: int, media: str) -> tuple[str, str] | None:
        """The JSON pointer of the response schema for ``route`` (``"GET /x/{id}"``), ``status`` and
        ``media`` type, and a readable location; None when the document does not describe it."""
        method, _, path = route.partition(" ")
        found = self.operations.get((method.lower(), _template(path)))
        if found is None:
            return None
        doc_path, doc_method = found
        responses: dict[str, Any] = self.doc["paths"][doc_path][doc_method].get("responses", {})
        code = next((c for c in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default")
                     if c in responses), None)  # fmt: skip
        if code is None:
            return None
        content: dict[str, Any] = responses[code].get("content") or {}
        media_key = media if media in content else next(
            (m for m in content if _JSON_MEDIA.match(m) or m in ("*/*", "application/*")), None)
        if media_key is None or "schema" not in content[media_key]:
            return None
        pointer = "/" + "/".join(_escape(t) for t in ("paths", doc_path, doc_method, "responses", code,
                                                       "content", media_key, "schema"))
        return pointer, f"{doc_method.upper()} {doc_path} -> {code} {media_key}"

    def validator(self, route: str, status: int, media: str) -> tuple[Any, str] | None:
        key = (route, status, media)
        if key not in self.validators:
            located = self.locate(route, status, media)
            if located is None:
                self.validators[key] = None
            else:
                pointer, where = located
                schema = {"$ref": f"{self.uri}#{pointer}"}
                compiled = jsonschema.Draft202012Validator(schema, registry=self.registry)
                self.validators[key] = (compiled, where)
        return self.validators[key]


@cache
def _provider(name: str) -> _Provider:
    return _Provider.load(name)


def _violations(errors: Iterator[Any]) -> tuple[Violation, ...]:
    ranked = sorted(errors, key=jsonschema.exceptions.relevance)
    found: list[Violation] = []
    for error in ranked[:MAX_VIOLATIONS]:
        schema_path = "/".join(str(p) for p in error.absolute_schema_path)
        found.append(Violation(instance_path=error.json_path, schema_path=schema_path, message=error.message))
    return tuple(found)


def is_json_media(content_type: str | None) -> bool:
    """``application/json`` or ``application/<x>+json``."""
    return content_type is not None and bool(_JSON_MEDIA.match(content_type.split(";")[0].strip().lower()))


def check(provider: str, route: str, status: int, body: bytes | str | Any, *,
          content_type: str | None = "application/json") -> Result:  # fmt: skip
    """Validate one response ``body`` (raw bytes/str, or an already parsed document) of ``route``
    (``"GET /search/status/{task_id}"``) with ``status`` against ``provider``'s published schema."""
    if provider not in DOCUMENTS:
        return Result(Verdict.NOT_DESCRIBED, note=f"no schema document for {provider}")
    if not is_json_media(content_type):
        return Result(Verdict.NOT_JSON, note=f"content type {content_type!r}")
    media = (content_type or "application/json").split(";")[0].strip().lower()
    found = _provider(provider).validator(route, status, media)
    if found is None:
        return Result(Verdict.NOT_DESCRIBED, note=f"{route} {status} is not in the document")
    compiled, where = found
    if isinstance(body, bytes | str):
        try:
            instance = json.loads(body)
        except ValueError as exc:
            return Result(Verdict.INVALID, where, (Violation("$", "", f"body is not valid JSON: {exc}"),))
    else:
        instance = body
    violations = _violations(compiled.iter_errors(instance))
    return Result(Verdict.INVALID if violations else Verdict.VALID, where, violations)
