"""``als4gan train``: train a segmentation network (s4GAN semi-supervised or supervised-only)."""

from __future__ import annotations

import argparse

HELP = "train a segmentation network (s4GAN semi-supervised or supervised-only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan train is not implemented yet")
