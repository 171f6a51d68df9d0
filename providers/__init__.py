"""Provider adapters, their wire formats and their sandbox emulators.

:data:`REGISTRY` maps a provider name to its adapter class (imported lazily, so importing the
core does not import every provider). Adding a provider touches its own folder, this registry,
``config/default.toml``, its tests and a README row.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.contract import ProviderAdapter

__all__ = ["REGISTRY", "load_adapter"]

REGISTRY: dict[str, str] = {
    "sixtyfour": "providers.sixtyfour.adapter:SixtyfourAdapter",
    "extruct": "providers.extruct.adapter:ExtructAdapter",
    "orbit": "providers.orbit.adapter:OrbitAdapter",
}


def load_adapter(name: str) -> type[ProviderAdapter]:
    """The adapter class registered as ``name``. Raises KeyError for an unknown name."""
    module_name, _, attribute = REGISTRY[name].partition(":")
    adapter: type[ProviderAdapter] = getattr(importlib.import_module(module_name), attribute)
    return adapter
