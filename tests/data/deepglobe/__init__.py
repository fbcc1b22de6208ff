"""Tiny fake deepglobe dataset."""
