"""``als4gan run``: see HELP."""

from __future__ import annotations

import argparse

HELP = "run a whole experiment grid from one YAML config (select, train, evaluate, report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError("als4gan run is not implemented yet")
