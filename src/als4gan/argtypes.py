"""Checks of option values that the command line needs without importing torch or the datasets."""

from __future__ import annotations

import math
from typing import Any

from als4gan.errors import ConfigError


def check_image_max(value: Any, where: str = "--image-max") -> float | None:
    """``value`` as a finite positive float (``None`` stays ``None``).

    Raises:
        ConfigError: If it is zero, negative, NaN, infinite or not a number (naming ``where``).
    """
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ConfigError(
            f"{where} must be a finite positive number (the pixel value that means 1.0, e.g. "
            f"255, 10000 or 65535), got {value!r}"
        )
    return number


def image_max_arg(text: str) -> float:
    """``argparse`` type of ``--image-max``: a finite positive number."""
    import argparse

    try:
        value = check_image_max(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    assert value is not None
    return value


__all__ = ["check_image_max", "image_max_arg"]
