"""The public API is what ``aggregator.__all__`` declares: sorted, importable, documented."""

from __future__ import annotations

import inspect

import aggregator


def test_all_is_sorted_and_every_name_exists() -> None:
    assert aggregator.__all__ == sorted(aggregator.__all__)
    missing = [name for name in aggregator.__all__ if not hasattr(aggregator, name)]
    assert missing == []


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = [
        name for name in aggregator.__all__
        if (inspect.isclass(obj := getattr(aggregator, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []
