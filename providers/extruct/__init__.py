"""Extruct (extruct.ai) Deep Search: the ``discovery_tasks`` API and its sandbox emulator."""
