"""Tests of the optional PostgreSQL backend (aggregator.db) on a real throwaway cluster (tests/postgres.py)."""
