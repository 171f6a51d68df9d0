"""Benchmarks and the fault soak, run against the sandbox in one process (issue 8).

``deepsearch bench`` runs the benchmarks; ``deepsearch soak`` runs the fault soak.
"""
