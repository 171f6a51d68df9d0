"""The cache key: equal for requests that ask the same thing, different for anything that changes the answer."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import SecretStr

from aggregator.cache import KEYED_FIELDS, UNKEYED_FIELDS, cache_key, normalize_text
from aggregator.models import Criterion, PersonIdentity, SearchRequest
from aggregator.pipelines import Policy
from aggregator.targets import ProviderTarget

TARGETS = {
    "sixtyfour": ProviderTarget("sixtyfour", "http://127.0.0.1:9001", SecretStr("key-a"), True),
    "orbit": ProviderTarget("orbit", "http://127.0.0.1:9002", SecretStr("key-b"), True),
    "extruct": ProviderTarget("extruct", "", None, True, "not running in this sandbox"),
}
BASE: dict[str, Any] = {"query": "VP of Engineering in New York"}


def key(targets: dict[str, ProviderTarget] | None = None, policy: Policy | None = None, **fields: Any) -> str:
    return cache_key(SearchRequest(**{**BASE, **fields}), targets or TARGETS, policy)


def test_every_request_field_is_keyed_except_deadline_and_budget() -> None:
    # a field added to SearchRequest must be reviewed: listed in KEYED_FIELDS (and normalized if need be)
    assert {"deadline_s", "budget"} == UNKEYED_FIELDS
    assert set(KEYED_FIELDS) | UNKEYED_FIELDS == set(SearchRequest.model_fields)
    assert not set(KEYED_FIELDS) & UNKEYED_FIELDS


def test_query_text_is_normalized() -> None:
    assert normalize_text("  VP\tof   Engineering\n") == "vp of engineering"
    full_width = "".join(chr(ord(c) + 0xFEE0) if c != " " else " " for c in "VP of Engineering")
    assert normalize_text(full_width) == "vp of engineering"  # NFKC: full-width forms
    assert normalize_text("STRASSE") == normalize_text("straße")  # casefold, not lower
    same = key()
    assert key(query="  vp OF engineering   in new\u00a0york ") == same
    assert key(query="\uff36\uff30 of Engineering in New York") == same  # full-width VP
    assert key(query="VP of Engineering in Boston") != same


def test_deadline_and_budget_do_not_change_the_key() -> None:
    assert key(deadline_s=30) == key(deadline_s=900, budget=5) == key()


def test_equivalent_exclusions_and_provider_order_give_one_key() -> None:
    a = key(exclude=("https://www.linkedin.com/in/jane-doe", "linkedin.com/in/john"))
    b = key(exclude=("http://linkedin.com/in/john/", "https://www.linkedin.com/in/jane-doe",
                     "https://linkedin.com/in/jane-doe?trk=x"))
    assert a == b
    assert key(providers=("sixtyfour", "orbit")) == key(providers=("orbit", "sixtyfour"))  # strategy all
    # a fallback chain and a race are ordered: the order changes who answers
    assert key(providers=("sixtyfour", "orbit"), strategy="fallback") != key(
        providers=("orbit", "sixtyfour"), strategy="fallback")


CRITERIA = [Criterion(key="api", name="API", criterion="Offers a public API for developers")]
VARIANTS: dict[str, dict[str, Any]] = {
    "mode": {"mode": "company"},
    "max_results": {"max_results": 20},
    "providers": {"providers": ("sixtyfour",)},
    "strategy": {"strategy": "fallback"},
    "min_results": {"strategy": "fallback", "min_results": 5},
    "hedge_delay_s": {"strategy": "race", "hedge_delay_s": 5.0},
    "exclude": {"exclude": ("https://www.linkedin.com/in/jane-doe",)},
    "titles": {"titles": ("CTO",)},
    "companies": {"companies": ("Stripe",)},
    "locations": {"locations": ("Boston",)},
    "schools": {"schools": ("MIT",)},
    "identity": {"identity": PersonIdentity(email="jane@example.com")},
    "simple_filters": {"simple_filters": {"country": {"$eq": "US"}}},
    "filters": {"filters": {"query": {"term": {"country": "US"}}}},
    "options": {"options": {"orbit": {"run_shape": "partial_only"}}},
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_result_shaping_field_changes_the_key(name: str) -> None:
    variant = VARIANTS[name]
    assert key(**variant) != key(), name
    if name in ("min_results", "hedge_delay_s"):  # not just the strategy that comes with it
        assert key(**variant) != key(strategy=variant["strategy"])


def test_every_keyed_field_has_a_variant() -> None:
    assert set(VARIANTS) == set(KEYED_FIELDS) - {"query"}  # the query has its own test


def test_option_order_does_not_matter_but_values_do() -> None:
    one = {"extruct": {"criteria": [c.model_dump() for c in CRITERIA]}, "orbit": {"run_shape": "partial_only"}}
    two = {"orbit": {"run_shape": "partial_only"}, "extruct": {"criteria": [c.model_dump() for c in CRITERIA]}}
    assert key(options=one) == key(options=two)
    assert key(options={"orbit": {"run_shape": "partial_plus_full"}}) != key(options=one)


def test_the_policy_and_where_providers_run_change_the_key() -> None:
    assert key(policy=Policy(strategy="fallback", steps=("orbit", "sixtyfour"))) != key(
        policy=Policy(strategy="fallback", steps=("sixtyfour", "orbit")))
    assert key(policy=Policy()) != key(policy=Policy(strategy="race"))
    live = dict(TARGETS, sixtyfour=ProviderTarget("sixtyfour", "https://api.sixtyfour.ai", SecretStr("key-a"), False))
    other_account = dict(TARGETS, sixtyfour=ProviderTarget("sixtyfour", "http://127.0.0.1:9001", SecretStr("k2"), True))
    other_sandbox = dict(TARGETS, sixtyfour=ProviderTarget("sixtyfour", "http://127.0.0.1:7777", SecretStr("key-a"),
                                                           True))
    now_skipped = dict(TARGETS, orbit=ProviderTarget("orbit", "", None, True, "no key"))
    keys = {key(), key(live), key(other_account), key(other_sandbox), key(now_skipped)}
    assert len(keys) == 5
    # a provider the request does not name does not matter
    assert key(now_skipped, providers=("sixtyfour",)) == key(providers=("sixtyfour",))


def test_the_key_never_holds_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    texts: list[str] = []
    real = hashlib.sha256

    def spy(data: bytes) -> Any:
        texts.append(data.decode())
        return real(data)

    monkeypatch.setattr(hashlib, "sha256", spy)
    key()
    keyed = texts[-1]  # the fingerprints hash the keys first; the cache key hashes the request last
    assert "key-a" not in keyed and "key-b" not in keyed and "\"account\":\"sixtyfour-" in keyed


def test_the_key_is_the_same_in_another_process() -> None:
    """Sets (a policy's ``advance_on``) iterate in an order that changes with the string hash seed."""
    script = ("from tests.cache.test_key import key; from aggregator.pipelines import Policy; "
              "print(key(policy=Policy(strategy='fallback', steps=('orbit', 'sixtyfour'))))")
    here = key(policy=Policy(strategy="fallback", steps=("orbit", "sixtyfour")))
    for seed in ("1", "2", "3"):
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": seed})
        assert other.stdout.strip() == here
