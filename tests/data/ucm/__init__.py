"""Tiny fake ucm dataset."""
