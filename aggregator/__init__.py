"""deepsearch-aggregator: one deep search across Sixtyfour, Extruct and Orbit, one normalized result.

The public API is what ``__all__`` lists; everything else is internal. Names are imported on first
use (SPEC 1 lazy loading, from the stub ``__init__.pyi``, the one list of public names), so
``import aggregator`` and the ``deepsearch`` command start without importing aiohttp, pydantic
models or any provider; ``from aggregator import Aggregator`` imports what that name needs.
"""

from typing import Any

import lazy_loader

_lazy_getattr, _lazy_dir, _names = lazy_loader.attach_stub(__name__, __file__)

__all__ = sorted([*_names, "__version__"])


def __getattr__(name: str) -> Any:
    if name == "__version__":  # one source: the installed distribution's metadata (pyproject.toml)
        from importlib import metadata

        return metadata.version("deepsearch-aggregator")
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return __all__
