"""``als4gan data``: see HELP."""

from __future__ import annotations

import argparse

HELP = "print per-class pixel shares and label counts of a split, flagging bad files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan data is not implemented yet")
