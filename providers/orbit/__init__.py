"""Orbit (api.orbitsearch.com): developer Deep Search v2 adapter, wire models and sandbox emulator."""
