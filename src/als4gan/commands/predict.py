"""``als4gan predict``: segment new images and GeoTIFFs of any size (tiled, georeference kept)."""

from __future__ import annotations

import argparse

HELP = "segment new images and GeoTIFFs of any size (tiled, georeference kept)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan predict is not implemented yet")
