"""Where each provider runs: live with its key, on the sandbox, or skipped (and why).

- ``sandbox``: every provider on the in-process sandbox;
- ``live``: providers with an API key run against their real API;
- ``auto`` (default): as ``live`` when any key is configured (providers without one are skipped
  with a note); with no key at all, as ``sandbox``.

A provider run live sends its API key on every request, so its base URL must be ``https://``.
Plain ``http://`` is accepted only for loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``:
the key never leaves the machine, e.g. a local proxy or ``deepsearch sandbox serve``), or anywhere
when ``http.allow_insecure_base_urls`` is true. Anything else raises
:class:`~aggregator.errors.ConfigError` before any network call. The sandbox is not affected.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from aggregator.config import ProviderSettings, Settings
from aggregator.errors import ConfigError

__all__ = ["ProviderTarget", "check_live_base_url", "is_loopback", "resolve_targets"]


@dataclass(frozen=True)
class ProviderTarget:
    """Where one provider runs in this Aggregator, or why it does not."""

    name: str
    base_url: str
    api_key: SecretStr | None
    sandbox: bool
    skip_reason: str | None = None


def _registry() -> list[str]:
    from providers import REGISTRY  # the registry is the one wiring point into providers

    return list(REGISTRY)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name) is this machine: ``localhost`` or a loopback IP."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_live_base_url(name: str, prov: ProviderSettings, *, allow_insecure: bool) -> None:
    """Refuse a live base URL that would carry ``name``'s API key unencrypted (module docstring).

    Raises:
        ConfigError: on ``providers.<name>.base_url``, naming the environment variable and the
            setting that fix or allow it.
    """
    parts = urlsplit(prov.base_url)
    where = f"set {prov.base_url_env} or providers.{name}.base_url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"providers.{name}.base_url",
                          f"{prov.base_url!r} is not an https:// URL; {where} to the provider's https:// API")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        raise ConfigError(
            f"providers.{name}.base_url",
            f"{name} would send its API key unencrypted to {prov.base_url}: {where} to an https:// URL, "
            "or set allow_insecure_base_urls = true in the [http] section of your config file to allow it")


def resolve_targets(settings: Settings) -> dict[str, ProviderTarget]:
    """Decide sandbox/live per registered provider (see the module docstring).

    Raises:
        ConfigError: a provider to run live has a base URL that is not https:// (nor loopback) and
            ``http.allow_insecure_base_urls`` is false.
    """
    names = [n for n in _registry() if n in settings.providers and settings.providers[n].enabled]
    keyed = {n for n in names if settings.providers[n].api_key is not None}
    on_sandbox = settings.target == "sandbox" or (settings.target == "auto" and not keyed)
    targets = {}
    for name in names:
        prov = settings.providers[name]
        skip = None
        if not on_sandbox and name not in keyed:
            skip = f"no API key: set {prov.api_key_env} to run {name} live"
        elif not on_sandbox:
            check_live_base_url(name, prov, allow_insecure=settings.http.allow_insecure_base_urls)
        targets[name] = ProviderTarget(name, prov.base_url, None if on_sandbox else prov.api_key,
                                       on_sandbox, skip)
    return targets
