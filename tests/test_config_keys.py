"""Every settings key is checked, with a did-you-mean (issue 14, item 10).

A typo inside a provider's table (``poll_intervall_s``, ``credits_per_profil``) used to be kept
silently as an adapter-specific extra key, and a misspelt provider table (``[providers.sixtyfor]``)
was reported as ``providers.sixtyfor.base_url: Field required``. Now each provider declares the
adapter-specific keys it reads (:attr:`providers.spec.ProviderSpec.settings`), and every key of every
layer (provider specs' defaults, the packaged ``default.toml``, the user file, overrides) must be a
known one. The declarations cannot drift from the adapters: every key an adapter reads through
:meth:`~aggregator.contract.ProviderAdapter.setting` is declared, and every declared key is read.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aggregator.config import ProviderSettings, default_config_path, load_settings
from aggregator.contract import ProviderAdapter
from aggregator.errors import ConfigError, did_you_mean
from providers import REGISTRY, register, unregister
from providers.spec import ProviderSpec, resolve
from tests.fourth_provider import SPEC as ACME

KNOWN_PROVIDERS = "(known: extruct, orbit, sixtyfour)"


def refused(source: str | dict[str, Any], tmp_path: Path) -> ConfigError:
    """The ConfigError of loading ``source``: TOML text for a user file, or a dict of overrides."""
    with pytest.raises(ConfigError) as info:
        if isinstance(source, str):
            path = tmp_path / "user.toml"
            path.write_text(source)
            load_settings(path, env={})
        else:
            load_settings(env={}, overrides=source)
    return info.value


# -- the cases ------------------------------------------------------------------------------
def test_a_misspelt_provider_table_is_an_unknown_provider_not_a_missing_base_url(tmp_path: Path) -> None:
    error = refused("[providers.sixtyfor]\npage_size = 50\n", tmp_path)
    assert error.field == "providers.sixtyfor"  # was providers.sixtyfor.base_url: Field required
    assert str(error) == f"providers.sixtyfor: unknown provider; did you mean 'sixtyfour'? {KNOWN_PROVIDERS}"


@pytest.mark.parametrize(
    ("toml", "field", "suggestion"),
    [
        ("[providers.sixtyfour]\npoll_intervall_s = 5.0\n", "providers.sixtyfour.poll_intervall_s", "poll_interval_s"),
        ("[providers.orbit]\ncredits_per_profil = 2\n", "providers.orbit.credits_per_profil",
         "credits_per_profile_read"),
        ("[providers.extruct]\npage_sise = 50\n", "providers.extruct.page_sise", "page_size"),
        ("[providers.sixtyfour]\nFetch_Via = 'csv'\n", "providers.sixtyfour.Fetch_Via", "fetch_via"),
        ("[providers.orbit]\nmax_concurent_jobs = 2\n", "providers.orbit.max_concurent_jobs", "max_concurrent_jobs"),
        ("[providers.extruct]\nprofile_batch = 5\n", "providers.extruct.profile_batch", None),  # Orbit's key
    ],
    ids=["common-key", "orbit-key", "extruct-key", "case", "common-key-2", "another-providers-key"],
)
def test_a_typo_inside_a_provider_table_is_refused_with_the_closest_key(
        tmp_path: Path, toml: str, field: str, suggestion: str | None) -> None:
    error = refused(toml, tmp_path)
    assert error.field == field
    assert error.problem.startswith("unknown field; ")
    if suggestion is None:
        assert "did you mean" not in error.problem and "check its spelling" in error.problem
    else:
        assert f"did you mean {suggestion!r}?" in error.problem
    assert "(known: " in error.problem and "poll_interval_s" in error.problem  # the common keys are listed too


@pytest.mark.parametrize(
    ("source", "field", "suggestion"),
    [
        ("[runn]\nmax_results = 5\n", "runn", "run"),
        ("[run]\nmax_result = 5\n", "run.max_result", "max_results"),
        ("[sandbox]\ntime_scal = 0.1\n", "sandbox.time_scal", "time_scale"),
        ("[retry]\nmax_attempt = 2\n", "retry.max_attempt", "max_attempts"),
        ("[http]\nallow_insecure_base_url = true\n", "http.allow_insecure_base_url", "allow_insecure_base_urls"),
        ("targte = 'live'\n", "targte", "target"),
        ("[mcp]\nmax_credits_per_cal = 5\n", "mcp.max_credits_per_cal", "max_credits_per_call"),
        ("[providers.sixtyfour]\nrate_limits = [{name = 'q', limit = 5, window_s = 1, brust = 9}]\n",
         "providers.sixtyfour.rate_limits[0].brust", "burst"),
        ("[policies.cheap]\nstratgy = 'fallback'\n", "policies.cheap.stratgy", "strategy"),
        ("[policies.cheap]\nstrategy = 'fallback'\nsteps = ['orbit', {strategy = 'all', min_result = 2}]\n",
         "policies.cheap.steps[1].min_result", "min_results"),
        ({"sandbox": {"seeed": 3}}, "sandbox.seeed", "seed"),
        ({"providers": {"orbit": {"profile_bach": 3}}}, "providers.orbit.profile_bach", "profile_batch"),
        ({"providers": {"Orbit": {}}}, "providers.Orbit", "orbit"),
    ],
    ids=["section", "run", "sandbox", "retry", "http", "top-level", "mcp", "rate-limit-row", "policy", "nested-policy",
         "overrides-section-key", "overrides-provider-key", "overrides-provider"],
)
def test_every_key_of_every_section_gets_a_did_you_mean(
        tmp_path: Path, source: str | dict[str, Any], field: str, suggestion: str) -> None:
    error = refused(source, tmp_path)
    assert error.field == field
    assert f"did you mean {suggestion!r}?" in error.problem and "(known: " in error.problem


def test_without_a_close_name_the_error_lists_the_known_ones(tmp_path: Path) -> None:
    error = refused("[providers.zeta]\nenabled = false\n", tmp_path)
    assert str(error) == f"providers.zeta: unknown provider; check its spelling or remove it {KNOWN_PROVIDERS}"
    assert refused({"bogus": {}}, tmp_path).problem.startswith("unknown field; check its spelling or remove it")


def test_unknown_keys_are_reported_before_bad_values(tmp_path: Path) -> None:
    error = refused("[providers.orbit]\nprofile_batch = 0\npoll_intervall_s = -1\n", tmp_path)
    assert error.field == "providers.orbit.poll_intervall_s"


# -- the declarations ------------------------------------------------------------------------------
def test_declared_adapter_keys_are_accepted_and_reach_the_adapter() -> None:
    settings = load_settings(env={}, overrides={"providers": {
        "sixtyfour": {"page_size": 10, "fetch_via": "csv", "credits_per_search": 1.0, "credits_per_result": 0.5},
        "extruct": {"page_size": 20, "credits_per_result": 2.0},
        "orbit": {"credits_per_run": 5.0, "credits_per_profile_read": 2.0, "profile_batch": 3},
    }})
    assert settings.providers["orbit"].option("profile_batch", 10) == 3
    assert settings.providers["extruct"].option("page_size", 100) == 20


@pytest.fixture
def widgets() -> Iterator[ProviderSpec]:
    """A provider registered at run time that declares its own key and brings its own defaults."""
    spec = ProviderSpec(name="widgets", adapter="tests.fourth_provider.adapter:AcmeAdapter",
                        defaults={**ACME.defaults, "widget_count": 3}, settings=("widget_count",))
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)


def test_a_registered_providers_declared_keys_are_checked_too(widgets: ProviderSpec, tmp_path: Path) -> None:
    assert load_settings(env={}).providers["widgets"].option("widget_count", 0) == 3
    error = refused({"providers": {"widgets": {"widget_cout": 4}}}, tmp_path)
    assert error.field == "providers.widgets.widget_cout" and "did you mean 'widget_count'?" in error.problem
    assert "(known: extruct, orbit, sixtyfour, widgets)" in refused({"providers": {"widget": {}}}, tmp_path).problem


def test_a_typo_in_a_providers_own_defaults_is_named(tmp_path: Path) -> None:
    spec = ProviderSpec(name="typo", adapter="tests.fourth_provider.adapter:AcmeAdapter",
                        defaults={**ACME.defaults, "poll_intervals": 5.0})
    register(spec)
    try:
        error = refused({}, tmp_path)
    finally:
        unregister(spec.name)
    assert error.field == "providers.typo.poll_intervals" and "did you mean 'poll_interval_s'?" in error.problem


def test_the_packaged_defaults_only_hold_known_keys_of_registered_providers() -> None:
    with default_config_path().open("rb") as handle:
        packaged = tomllib.load(handle)
    assert set(packaged["providers"]) == {"sixtyfour", "extruct", "orbit"} <= set(REGISTRY)
    for name, table in packaged["providers"].items():
        assert set(table) <= {*ProviderSettings.model_fields, *REGISTRY[name].settings}, name


def test_an_unregistered_built_in_providers_packaged_section_is_left_out(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    monkeypatch.delitem(REGISTRY, "orbit")
    assert sorted(load_settings(env={}).providers) == ["extruct", "sixtyfour"]
    assert refused({"providers": {"orbit": {"enabled": False}}}, tmp_path).field == "providers.orbit"


def test_did_you_mean_picks_the_closest_name_or_none() -> None:
    assert did_you_mean("sixtyfor", REGISTRY) == "sixtyfour"
    assert did_you_mean("ORBIT", ["orbit", "extruct"]) == "orbit"
    assert did_you_mean("zzz", ["orbit", "extruct"]) is None


# -- the declarations cannot drift from the adapters -----------------------------------------------
SPECS = {**REGISTRY, ACME.name: ACME}


def package_dir(spec: ProviderSpec) -> Path:
    module = importlib.import_module(spec.adapter.partition(":")[0])
    assert module.__file__ is not None
    return Path(module.__file__).parent


def keys_read_in_source(spec: ProviderSpec) -> set[str]:
    """The names every ``.setting(...)`` / ``.option(...)`` call of the provider's package (not its
    emulator) reads; a name that is not a literal fails (it could not be checked)."""
    names = set()
    for path in package_dir(spec).rglob("*.py"):
        if "emulator" in path.relative_to(package_dir(spec)).with_suffix("").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("setting", "option") and node.args):
                first = node.args[0]
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), \
                    f"{path}:{node.lineno}: a setting read by a computed name cannot be checked"
                names.add(first.value)
    return names


def keys_read_when_built(spec: ProviderSpec, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names the adapter reads through ``setting()`` when it is built from the loaded settings."""
    read: set[str] = set()
    original = ProviderAdapter.setting

    def spy(self: ProviderAdapter, name: str, default: Any, **bounds: Any) -> Any:
        read.add(name)
        return original(self, name, default, **bounds)

    monkeypatch.setattr(ProviderAdapter, "setting", spy)
    settings = (load_settings(env={}).providers[spec.name] if spec.name in REGISTRY
                else ProviderSettings.model_validate(spec.defaults))
    adapter: type[ProviderAdapter] = resolve(spec.adapter)
    adapter(SimpleNamespace(provider=spec.name, base_url=settings.base_url, clock=None), settings)  # type: ignore[arg-type]
    return read


@pytest.mark.parametrize("spec", SPECS.values(), ids=list(SPECS))
def test_every_key_an_adapter_reads_is_declared_in_its_spec_and_every_declared_key_is_read(
        spec: ProviderSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    in_source = keys_read_in_source(spec)
    when_built = keys_read_when_built(spec, monkeypatch)
    assert when_built <= in_source  # the source scan sees every read
    declared = set(spec.settings)
    assert in_source <= declared, f"{spec.name}: read but not declared in its SPEC.settings: {in_source - declared}"
    assert declared - in_source == set(), f"{spec.name}: declared but never read"
    assert not declared & set(ProviderSettings.model_fields), "a common key is not an adapter-specific one"


def test_loading_settings_imports_no_adapter() -> None:
    code = ("import json, sys; from aggregator.config import load_settings; load_settings(env={}); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('providers.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert set(loaded) == {"providers.spec", *(f"providers.{name}" for name in REGISTRY)}, loaded
