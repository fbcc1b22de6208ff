"""Exact decimal ratios and the labelled budget ``B = ceil(R x N)`` (docs/method.md).

One implementation, used by active selection (:mod:`als4gan.active.budget`) and by training on
a random labelled set (:mod:`als4gan.train.config`). Torch-free and dependency-free, so every
layer may import it.

Ratios are taken as the decimal numbers the user typed (``0.07`` is exactly 7/100), so the
products never suffer from binary rounding: ``0.07 * 100 == 7.000000000000001`` in floats.
"""

from __future__ import annotations

import math
from fractions import Fraction

from als4gan.errors import ConfigError


def exact_fraction(value: float | int | str, name: str) -> Fraction:
    """The decimal number ``value`` as an exact fraction (``0.07`` -> 7/100).

    Floats are converted through their shortest decimal representation (``repr``), which is
    the number the user wrote on the command line or in a YAML file.

    Raises:
        ConfigError: If ``value`` is not a finite number.
    """
    try:
        fraction = Fraction(repr(value) if isinstance(value, float) else str(value))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    return fraction


def ratio_budget(ratio: float | int | str | Fraction, num_images: int) -> int:
    """``B = ceil(R x N)`` with ``R`` taken exactly (``ceil(0.07 x 100) == 7``).

    Args:
        ratio: The labelled ratio ``R`` (a :class:`~fractions.Fraction` is used as is).
        num_images: ``N``.

    Raises:
        ConfigError: If ``ratio`` is not a finite number.
    """
    exact = ratio if isinstance(ratio, Fraction) else exact_fraction(ratio, "labeled_ratio")
    return math.ceil(exact * num_images)
