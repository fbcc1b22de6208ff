"""Image-level classifier: the acquisition model of active selection (docs/method.md, stage 1)."""

from __future__ import annotations

import torch
from torch import nn

from als4gan.models.backbones import build_backbone
from als4gan.models.normalize import Normalize


class ImageClassifier(nn.Module):
    """A backbone with a new linear head; exposes pooled embeddings for diversity strategies.

    Args:
        backbone: Backbone name (see :data:`als4gan.models.backbones.BACKBONES`).
        num_classes: Number of image-level labels.
        in_channels: Input bands.
        dropout: Dropout before the head (used by MC-dropout BALD; 0 disables it).
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        num_classes: int = 6,
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.normalize = Normalize(in_channels)
        self.backbone = build_backbone(backbone, in_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(self.backbone.out_channels, num_classes)
        self.num_classes = num_classes

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (B, D) for images in [0, 1]."""
        return self.backbone(self.normalize(x))  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.dropout(self.embed(x)))  # type: ignore[no-any-return]
