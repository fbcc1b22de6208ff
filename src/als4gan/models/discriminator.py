"""The s4GAN discriminator (docs/method.md): judges (class-probability map, RGB image) pairs."""

from __future__ import annotations

import torch
from torch import nn


class S4GANDiscriminator(nn.Module):
    """The s4GAN discriminator network.

    Four 4x4 stride-2 convs (64-128-256-512), LeakyReLU(0.2), Dropout2d(0.5) after the first
    three, global average pooling, a linear layer to one logit.

    Input: ``C`` class-probability channels concatenated with the image in [0, 1]
    (``in_channels`` bands), i.e. ``num_classes + in_channels`` channels.

    Args:
        num_classes: Number of classes ``C``.
        in_channels: Image bands concatenated to the probability map.
        width: Channels of the first conv (64 in the paper); later convs double it.
        dropout: Dropout2d rate after the first three convs (0.5 in the paper).
    """

    def __init__(
        self, num_classes: int, in_channels: int = 3, width: int = 64, dropout: float = 0.5
    ) -> None:
        super().__init__()
        channels = [num_classes + in_channels, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for index in range(4):
            layers.append(nn.Conv2d(channels[index], channels[index + 1], 4, stride=2, padding=1))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if index < 3:
                layers.append(nn.Dropout2d(dropout))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[-1], 1)
        self.num_classes = num_classes
        self.in_channels = in_channels

    def forward(self, probs: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score a batch.

        Args:
            probs: (B, C, H, W) class probabilities (softmax output or one-hot labels).
            image: (B, in_channels, H, W) image in [0, 1].

        Returns:
            ``{"logit": (B,), "prob": (B,) sigmoid of logit, "features": (B, 512) pooled}``.
        """
        x = torch.cat([probs, image.to(probs.dtype)], dim=1)
        features = torch.flatten(self.pool(self.features(x)), 1)
        logit = self.fc(features).squeeze(1)
        return {"logit": logit, "prob": torch.sigmoid(logit), "features": features}
