"""Fixtures of the PostgreSQL backend tests: a fresh migrated database, or a fresh empty one (``postgres_url``)."""

from __future__ import annotations

import pytest

from tests.db.backends import migrated_database
from tests.postgres import Cluster


@pytest.fixture
def database_url(postgres: Cluster) -> str:
    """The URL of a fresh database holding the current schema (every migration applied)."""
    return migrated_database(postgres)
