"""Fixture generators: tiny fake datasets written at test time (torchgeo style)."""
