"""Guarantees of issue 12, each pinned at two layers where it applies.

Each module holds one guarantee: its request-sequence tests (aioresponses, the real core on a
fake or virtual clock, no sockets) beside its sandbox tests (the real emulators over sockets,
asserting on what each emulator received: ``Sandbox.requests``). Every test here was checked to
fail, not hang, with the product mutation its docstring names.
"""
