""":class:`ProviderSpec`: everything the project knows about one provider, declared once.

Each provider package declares ``SPEC`` in its ``__init__.py`` (cheap: names, numbers and
``"module:attribute"`` paths, nothing imported); :mod:`providers` registers it, and every part that
needs a provider reads the declaration instead of keeping its own table:

- the core builds its adapter from ``adapter`` (:func:`providers.load_adapter`);
- the sandbox starts its emulator from ``emulator`` and lets it see ``coverage`` of the world;
- the entity-resolution ground truth reads a hit's hidden id through ``truth``;
- the soak counts paid starts on ``start_route``;
- settings take ``defaults`` as the provider's built-in ``[providers.<name>]`` section when the
  packaged ``default.toml`` has none (a provider added outside this repository), and refuse any key
  of that section that is neither a common provider setting nor one of its ``settings`` (a typo).

Adding a provider: its package (adapter, wire models, ``emulator/`` subpackage, ``CONTRACT.md``,
``SPEC``), one row in :mod:`providers` (or :func:`providers.register` at run time), its tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProviderSpec", "resolve"]


@dataclass(frozen=True)
class ProviderSpec:
    """One provider's declaration.

    Attributes:
        name: the provider's name in settings, requests and reports (``"sixtyfour"``).
        adapter: ``"module:Class"`` of its :class:`~aggregator.contract.ProviderAdapter`.
        emulator: ``"module:create_emulator"`` of its sandbox emulator factory, or None (no sandbox).
        coverage: the share (0-1] of the synthetic world's entities its emulator knows.
        truth: ``"module:function"`` giving the hidden world id of one of its hits
            (``(hit, world) -> str | None``; see :mod:`providers.sandbox.truth`), or None.
        start_route: the route key of its paid job start (``"POST /search/start-deep-search"``).
        defaults: its built-in settings section, used when the packaged defaults have none.
        settings: the adapter-specific keys its ``[providers.<name>]`` section may hold, besides the
            common ones of :class:`~aggregator.config.ProviderSettings` (``page_size``...): each one
            its adapter reads with :meth:`~aggregator.contract.ProviderAdapter.setting`. Settings
            refuse any other key, naming the closest of these.
    """

    name: str
    adapter: str
    emulator: str | None = None
    coverage: float = 1.0
    truth: str | None = None
    start_route: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    settings: tuple[str, ...] = ()


def resolve(target: str) -> Any:
    """The object a ``"module:attribute"`` path names (imported now)."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
