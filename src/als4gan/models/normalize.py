"""Input normalisation inside the networks, so every caller passes images in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Subtract per-band mean and divide by std (ImageNet statistics for the RGB bands).

    Bands beyond the third use mean 0.5 and std 0.25, a neutral choice for [0, 1] data.

    Args:
        in_channels: Number of input bands.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        mean = list(IMAGENET_MEAN[:in_channels]) + [0.5] * max(0, in_channels - 3)
        std = list(IMAGENET_STD[:in_channels]) + [0.25] * max(0, in_channels - 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape (B, C, H, W)."""
        return (x - self.mean) / self.std
