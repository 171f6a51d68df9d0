"""Crash-and-resume tests: a run killed at a durable step of the job store, then resumed (issue 12)."""
