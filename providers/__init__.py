"""Provider adapters, their wire formats and their sandbox emulators."""
