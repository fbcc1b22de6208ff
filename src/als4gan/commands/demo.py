"""``als4gan demo``: run a small end-to-end experiment on the generated default dataset."""

from __future__ import annotations

import argparse

HELP = "run a small end-to-end experiment on the generated default dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan demo is not implemented yet")
