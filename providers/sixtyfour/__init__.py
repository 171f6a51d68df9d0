"""Sixtyfour (api.sixtyfour.ai): adapter, wire models and sandbox emulator."""
