"""``als4gan evaluate``: see HELP."""

from __future__ import annotations

import argparse

HELP = "score a checkpoint on a split (mIoU, per-class IoU/F1, confusion matrix)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan evaluate is not implemented yet")
