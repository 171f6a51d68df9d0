"""Fixtures for tests that run the CLI in-process (a plugin of the root ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from aggregator.http import ProviderHTTPClient

__all__ = ["keep_logging_config", "provider_calls"]


@pytest.fixture(autouse=True)
def keep_logging_config() -> Iterator[None]:
    """The CLI configures structlog to its (captured, later closed) stderr; restore the test config."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def provider_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every provider call of the test (``"METHOD /template"``), seen where all HTTP goes."""
    seen: list[str] = []
    send = ProviderHTTPClient._send

    async def spy(self: ProviderHTTPClient, method: str, url: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(endpoint)
        return await send(self, method, url, endpoint, *args, **kwargs)

    monkeypatch.setattr(ProviderHTTPClient, "_send", spy)
    return seen
