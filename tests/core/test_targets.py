"""Where providers run, and live mode refusing base URLs that would carry an API key unencrypted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aggregator.config import Settings, load_settings
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.targets import resolve_targets

KEY = "sk-CANARY-targets-0001"


def live(base_url: str, *, allow_insecure: bool = False, **extra_env: str) -> Settings:
    env = {"SIXTYFOUR_API_KEY": KEY, "SIXTYFOUR_BASE_URL": base_url, **extra_env}
    overrides: dict[str, Any] = {"http": {"allow_insecure_base_urls": allow_insecure}}
    return load_settings(env=env, overrides=overrides).with_target("live")


def test_a_plain_http_live_base_url_is_refused_naming_the_provider_the_variable_and_the_setting() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_targets(live("http://api.sixtyfour.example"))

    assert info.value.field == "providers.sixtyfour.base_url"
    message = str(info.value)
    assert "sixtyfour" in message and "SIXTYFOUR_BASE_URL" in message and "https://" in message
    assert "allow_insecure_base_urls = true" in message and "[http]" in message
    assert KEY not in message


async def test_the_aggregator_refuses_it_before_opening_a_session_or_a_sandbox() -> None:
    agg = Aggregator(live("http://api.sixtyfour.example"))
    with pytest.raises(ConfigError, match="SIXTYFOUR_BASE_URL"):
        async with agg:
            pytest.fail("the Aggregator opened")  # pragma: no cover

    assert agg.sandbox is None and agg.targets == {}
    with pytest.raises(RuntimeError, match="not open"):
        _ = agg._http.session  # no aiohttp session was created, so nothing was sent


@pytest.mark.parametrize("url", ["ftp://api.sixtyfour.example", "api.sixtyfour.example", "https://"])
def test_a_live_base_url_that_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="is not an https:// URL"):
        resolve_targets(live(url, allow_insecure=True))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9000/v1", "http://[::1]:7000",
                                 "http://127.10.0.3"])
def test_loopback_hosts_may_use_plain_http_because_the_key_never_leaves_the_machine(url: str) -> None:
    target = resolve_targets(live(url))["sixtyfour"]

    assert target.base_url == url.rstrip("/") and not target.sandbox and target.skip_reason is None


def test_allow_insecure_base_urls_lets_plain_http_through(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[http]\nallow_insecure_base_urls = true\n")
    settings = load_settings(user, env={"SIXTYFOUR_API_KEY": KEY, "SIXTYFOUR_BASE_URL": "http://10.0.0.5:8080"})

    assert settings.http.allow_insecure_base_urls
    assert resolve_targets(settings.with_target("live"))["sixtyfour"].base_url == "http://10.0.0.5:8080"


def test_https_is_the_default_and_insecure_urls_are_off_by_default() -> None:
    settings = load_settings(env={})

    assert not settings.http.allow_insecure_base_urls
    assert all(p.base_url.startswith("https://") for p in settings.providers.values())
    assert resolve_targets(live("https://api.sixtyfour.ai"))["sixtyfour"].api_key is not None


def test_providers_without_a_key_and_the_sandbox_are_not_checked() -> None:
    env = {"SIXTYFOUR_API_KEY": KEY, "ORBIT_BASE_URL": "http://orbit.example"}
    targets = resolve_targets(load_settings(env=env).with_target("live"))
    assert targets["orbit"].skip_reason is not None  # no key: skipped, never called

    sandboxed = resolve_targets(live("http://api.sixtyfour.example").with_target("sandbox"))
    assert all(t.sandbox and t.api_key is None for t in sandboxed.values())
