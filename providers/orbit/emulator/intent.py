"""Server-side validation of ``structuredIntent`` (DSL v1) for Deep Search (contract §3.1, §7).

Checks run in this order, each answering 400 with the documented code:

1. not an object -> ``structured_intent_required`` (DOC §3.1 "non-object");
2. ``personalization`` -> ``developer_deep_search_personalization_unsupported`` (DOC: Search only);
3. ``entityClauses`` -> ``structured_intent_entity_clauses_unsupported`` (DOC §7);
4. ``resolvedCompanyFilters`` / ``resolvedSchoolFilters`` / ``resolvedEntityFilters`` ->
   ``structured_intent_server_owned_field`` (DOC §7);
5. ``version`` other than ``"v1"`` -> ``structured_intent_version_unsupported`` (DOC §7; a
   missing version is ``structured_intent_invalid``, INF);
6. unknown keys at any level or wrong types -> ``structured_intent_invalid`` (INF §7 "probably").

``demographics`` is validated (both bounds, ``min <= max``) and otherwise ignored: the sandbox
world records no ages or genders (INF). Year fields are validated and ignored likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.orbit.emulator.http import api_error
from providers.sandbox.server import Reply

__all__ = ["TEMPORAL_SCOPES", "validate_intent"]

TEMPORAL_SCOPES = ("current", "historical", "both")
_TOP = {"version", "names", "experiences", "schools", "semanticClauses", "geo", "demographics"}
_SERVER_OWNED = ("resolvedCompanyFilters", "resolvedSchoolFilters", "resolvedEntityFilters")
_EXPERIENCE: dict[str, str] = {"organization": "str", "title": "str", "titleAnyOf": "strs",
                               "year": "int", "startYear": "int", "startYearLte": "int",
                               "endYear": "int", "temporalScope": "scope"}  # fmt: skip
_SCHOOL: dict[str, str] = {"school": "str", "schoolAnyOf": "strs", "graduationYear": "int",
                           "startYear": "int", "endYear": "int", "temporalScope": "scope",
                           "relation": "str"}  # fmt: skip
_CLAUSE: dict[str, str] = {"text": "str", "anyOf": "strs"}
_GEO: dict[str, str] = {"place": "str", "distance": "str", "isHistorical": "bool"}


def _invalid(path: str, rule: str) -> Reply:
    return api_error(400, "structured_intent_invalid", f"structuredIntent{path} {rule}.")


def validate_intent(intent: Any) -> dict[str, Any]:
    """Return ``intent`` if it is a valid Deep Search DSL v1 object; raise a 400 :class:`Reply`
    with the documented code otherwise (see the module docstring for the order)."""
    if not isinstance(intent, dict):
        raise api_error(400, "structured_intent_required", "structuredIntent must be an object.")
    if "personalization" in intent:
        raise api_error(400, "developer_deep_search_personalization_unsupported",
                        "structuredIntent.personalization is not supported by Deep Search; "
                        "use POST /v2/developer/search for network or near-me search.")
    if "entityClauses" in intent:
        raise api_error(400, "structured_intent_entity_clauses_unsupported",
                        "structuredIntent.entityClauses is not supported.")
    owned = [key for key in _SERVER_OWNED if key in intent]
    if owned:
        raise api_error(400, "structured_intent_server_owned_field",
                        f"structuredIntent.{owned[0]} is set by the server and cannot be sent.")
    if "version" not in intent:
        raise _invalid(".version", 'is required and must be "v1"')
    if intent["version"] != "v1":
        raise api_error(400, "structured_intent_version_unsupported",
                        f'structuredIntent.version {intent["version"]!r} is not supported; use "v1".')
    _check_keys(intent, _TOP, "")
    _check_fields(intent)
    return intent


def _check_fields(intent: Mapping[str, Any]) -> None:
    if "names" in intent:
        _check_value(intent["names"], "strs", ".names")
    for key, schema in (("experiences", _EXPERIENCE), ("schools", _SCHOOL),
                        ("semanticClauses", _CLAUSE)):  # fmt: skip
        if key in intent:
            _check_objects(intent[key], schema, f".{key}")
    if "geo" in intent:
        _check_object(intent["geo"], _GEO, ".geo")
    if "demographics" in intent:
        _check_demographics(intent["demographics"])


def _check_keys(item: Mapping[str, Any], allowed: set[str] | Mapping[str, str], path: str) -> None:
    unknown = [key for key in item if key not in allowed]
    if unknown:
        raise _invalid(f"{path}.{unknown[0]}", "is not a DSL v1 field")


def _check_objects(value: Any, schema: Mapping[str, str], path: str) -> None:
    if not isinstance(value, list):
        raise _invalid(path, "must be an array of objects")
    for i, item in enumerate(value):
        _check_object(item, schema, f"{path}[{i}]")


def _check_object(item: Any, schema: Mapping[str, str], path: str) -> None:
    if not isinstance(item, dict):
        raise _invalid(path, "must be an object")
    _check_keys(item, schema, path)
    for key, value in item.items():
        _check_value(value, schema[key], f"{path}.{key}")


def _check_value(value: Any, kind: str, path: str) -> None:
    if kind == "str" and not (isinstance(value, str) and value.strip()):
        raise _invalid(path, "must be a non-empty string")
    if kind == "strs" and not (
        isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise _invalid(path, "must be an array of non-empty strings")
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        raise _invalid(path, "must be an integer")
    if kind == "bool" and not isinstance(value, bool):
        raise _invalid(path, "must be a boolean")
    if kind == "scope" and value not in TEMPORAL_SCOPES:
        raise _invalid(path, "must be one of current, historical, both")


def _check_demographics(value: Any) -> None:
    if not isinstance(value, dict):
        raise _invalid(".demographics", "must be an object")
    _check_keys(value, {"ageRange", "birthYearRange", "gender"}, ".demographics")
    for key in ("ageRange", "birthYearRange"):
        if key in value:
            _check_range(value[key], f".demographics.{key}")
    if "gender" in value:
        _check_value(value["gender"], "str", ".demographics.gender")


def _check_range(value: Any, path: str) -> None:
    """DOC §7: both bounds required, integers, ``min <= max``."""
    ints = isinstance(value, dict) and set(value) == {"min", "max"} and all(
        isinstance(value[k], int) and not isinstance(value[k], bool) for k in ("min", "max")
    )
    if not ints or value["min"] > value["max"]:
        raise _invalid(path, "needs integer min and max with min <= max")
