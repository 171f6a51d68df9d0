"""The provider registry: each provider's one declaration (:class:`~providers.spec.ProviderSpec`).

:data:`REGISTRY` maps a provider name to its spec, in the order providers are listed and run.
Specs hold import paths only, so importing the registry imports no adapter, wire model or
emulator; :func:`load_adapter` imports an adapter when a run needs it. A provider developed
outside this repository registers with :func:`register`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.extruct import SPEC as EXTRUCT
from providers.orbit import SPEC as ORBIT
from providers.sixtyfour import SPEC as SIXTYFOUR
from providers.spec import ProviderSpec, resolve

if TYPE_CHECKING:
    from aggregator.contract import ProviderAdapter

__all__ = ["REGISTRY", "ProviderSpec", "load_adapter", "register", "unregister"]

REGISTRY: dict[str, ProviderSpec] = {spec.name: spec for spec in (SIXTYFOUR, EXTRUCT, ORBIT)}


def register(spec: ProviderSpec) -> None:
    """Add (or replace) a provider. Raises ValueError for a name that is not a lower-case identifier."""
    if not spec.name.isidentifier() or spec.name != spec.name.lower():
        raise ValueError(f"provider names are lower-case identifiers, got {spec.name!r}")
    REGISTRY[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a provider registered with :func:`register` (no error when it is not there)."""
    REGISTRY.pop(name, None)


def load_adapter(name: str) -> type[ProviderAdapter]:
    """The adapter class registered as ``name``. Raises KeyError for an unknown name."""
    adapter: type[ProviderAdapter] = resolve(REGISTRY[name].adapter)
    return adapter
