"""Dataset keyword options from a stage's settings (one mapping for every stage).

``classes_file``, ``bands`` and ``image_max`` are options of the ``folder`` dataset;
:func:`als4gan.data.build_dataset` rejects them, with a clear message, for datasets that take
no such option. Only options that were set are passed, so the other datasets accept the result
of a config that left them empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def dataset_options(
    classes_file: str | None = None,
    bands: Sequence[int] | None = None,
    image_max: float | None = None,
) -> dict[str, Any]:
    """Keyword options for :func:`als4gan.data.build_dataset` (only those that were set).

    Args:
        classes_file: Class table file (``--classes-file``); empty or ``None`` = not set.
        bands: 1-based image bands (``--bands``); empty or ``None`` = not set.
        image_max: Value mapped to 1 when scaling images (``--image-max``); ``None`` = not set.

    Returns:
        ``{"classes_file": ..., "bands": [...], "image_max": ...}`` restricted to the set ones.
    """
    options: dict[str, Any] = {}
    if classes_file:
        options["classes_file"] = classes_file
    if bands:
        options["bands"] = list(bands)
    if image_max is not None:
        options["image_max"] = float(image_max)
    return options
