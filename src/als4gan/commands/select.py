"""``als4gan select``: choose which images to label under a budget (active learning)."""

from __future__ import annotations

import argparse

HELP = "choose which images to label under a budget (active learning)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan select is not implemented yet")
