"""Helpers that are not part of the main API (each submodule imports its own dependencies on first use)."""
