"""``als4gan report``: build one self-contained HTML report from one or more run folders."""

from __future__ import annotations

import argparse

HELP = "build one self-contained HTML report from one or more run folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan report is not implemented yet")
