"""Tiny fake folder dataset."""
