"""Shared sandbox machinery: the synthetic world, query matching, fault injection,
rate-limit enforcement, time scale and ``/_sandbox/stats``."""
