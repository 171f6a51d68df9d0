"""Where each provider runs: live with its key, on the sandbox, or skipped (and why).

- ``sandbox``: every provider on the in-process sandbox;
- ``live``: providers with an API key run against their real API;
- ``auto`` (default): as ``live`` when any key is configured (providers without one are skipped
  with a note); with no key at all, as ``sandbox``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from aggregator.config import Settings

__all__ = ["ProviderTarget", "resolve_targets"]


@dataclass(frozen=True)
class ProviderTarget:
    """Where one provider runs in this Aggregator, or why it does not."""

    name: str
    base_url: str
    api_key: SecretStr | None
    sandbox: bool
    skip_reason: str | None = None


def _registry() -> dict[str, str]:
    from providers import REGISTRY  # the registry is the one wiring point into providers

    return REGISTRY


def resolve_targets(settings: Settings) -> dict[str, ProviderTarget]:
    """Decide sandbox/live per registered provider (see the module docstring)."""
    names = [n for n in _registry() if n in settings.providers and settings.providers[n].enabled]
    keyed = {n for n in names if settings.providers[n].api_key is not None}
    on_sandbox = settings.target == "sandbox" or (settings.target == "auto" and not keyed)
    targets = {}
    for name in names:
        prov = settings.providers[name]
        skip = None
        if not on_sandbox and name not in keyed:
            skip = f"no API key: set {prov.api_key_env} to run {name} live"
        targets[name] = ProviderTarget(name, prov.base_url, None if on_sandbox else prov.api_key,
                                       on_sandbox, skip)
    return targets
