"""The inference regime: how images are segmented when a network is scored.

Validation during training (which chooses ``best.pt``) and ``als4gan evaluate`` (which scores
the test split) must segment images the same way, or the checkpoint is chosen under one regime
and scored under another. The regime is fixed when training starts, from ``val_window`` and
``crop_size``, recorded in the checkpoints (``inference``) and in ``config.yaml``
(``val_window``), and ``als4gan evaluate`` uses it unless told otherwise.

This module also checks that the ASPP head can use its dilation rates at the training crop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

#: Overlap between neighbouring sliding windows in validation (and evaluation by default).
DEFAULT_OVERLAP = 1 / 3


@dataclass(frozen=True)
class InferenceRegime:
    """How images are segmented for scoring.

    Attributes:
        window: Sliding-window side in pixels; ``None`` = each whole image in one pass. Images
            no larger than the window are segmented in one pass too.
        overlap: Overlap fraction between neighbouring windows (blended).
    """

    window: int | None
    overlap: float = DEFAULT_OVERLAP

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints and JSON (``window`` ``None`` = whole images)."""
        return {"window": self.window, "overlap": self.overlap}

    def describe(self) -> str:
        """E.g. ``128 px sliding windows (overlap 0.33)`` or ``whole images in one pass``."""
        if self.window is None:
            return "whole images in one pass"
        return f"{self.window} px sliding windows (overlap {self.overlap:.2f})"


def training_regime(val_window: int | None, crop_size: int) -> InferenceRegime:
    """The regime of validation during training: ``val_window`` (0 = whole), else the crop."""
    if val_window is None:
        return InferenceRegime(int(crop_size))
    return InferenceRegime(int(val_window) or None)


def recorded_regime(checkpoint_meta: Mapping[str, Any]) -> InferenceRegime | None:
    """The regime a checkpoint was validated with, or ``None`` when it records none.

    Checkpoints record it as ``inference``; older ones are read from their ``config``
    (``val_window`` and ``crop_size``), which validation used the same way (overlap 1/3).
    """
    recorded = checkpoint_meta.get("inference")
    if isinstance(recorded, Mapping) and "window" in recorded:
        window = recorded.get("window")
        overlap = recorded.get("overlap", DEFAULT_OVERLAP)
        return InferenceRegime(
            int(window) if isinstance(window, int | float) and window > 0 else None,
            float(overlap) if isinstance(overlap, int | float) else DEFAULT_OVERLAP,
        )
    config = checkpoint_meta.get("config")
    if not isinstance(config, Mapping) or "val_window" not in config:
        return None
    crop = config.get("crop_size")
    val_window = config.get("val_window")
    if val_window is None and not isinstance(crop, int | float):
        return None
    if val_window is not None and not isinstance(val_window, int | float):
        return None
    return training_regime(
        int(val_window) if val_window is not None else None, int(crop) if crop else 0
    )


def aspp_dilations(model: nn.Module) -> list[int]:
    """Dilation rates of the dilated convolutions outside the backbone (the ASPP branches)."""
    backbone = getattr(model, "backbone", None)
    inside = {id(m) for m in backbone.modules()} if isinstance(backbone, nn.Module) else set()
    rates = {
        int(module.dilation[0])
        for module in model.modules()
        if isinstance(module, nn.Conv2d) and id(module) not in inside and module.dilation[0] > 1
    }
    return sorted(rates)


def aspp_warning(model: nn.Module, crop_size: int, output_stride: int) -> str | None:
    """A warning when ASPP rates reach past the training feature map, else ``None``.

    A 3x3 convolution with dilation ``r`` on an ``n`` x ``n`` map with ``r >= n`` has every
    off-centre tap in the zero padding: during training that branch is a 1x1 convolution, and
    its off-centre weights only ever meet real features at inference on larger images.

    Args:
        model: The segmentation network.
        crop_size: Training crop side in pixels.
        output_stride: The network's output stride (feature map = crop / stride).
    """
    rates = aspp_dilations(model)
    if not rates:
        return None
    feature = math.ceil(crop_size / output_stride)
    blind = [rate for rate in rates if rate >= feature]
    if not blind:
        return None
    needed = output_stride * (max(rates) + 1)
    several = len(blind) > 1
    return (
        f"warning: ASPP dilation rate{'s' if several else ''} {', '.join(map(str, blind))} "
        f"{'reach' if several else 'reaches'} past the {feature}x{feature} training feature map "
        f"(--crop-size {crop_size} / output stride {output_stride}): "
        f"{'those branches only ever see their' if several else 'that branch only ever sees its'}"
        f" centre tap in training. Use --crop-size {needed} or more, smaller "
        "--aspp-rates, or --output-stride 8 with a crop that covers the rates (see "
        "docs/training.md)."
    )


__all__ = [
    "DEFAULT_OVERLAP",
    "InferenceRegime",
    "aspp_dilations",
    "aspp_warning",
    "recorded_regime",
    "training_regime",
]
