"""DeepLab-v2 (ResNet backbone, output stride 8, summed ASPP 6/12/18/24) for s4GAN's generator."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from als4gan.models.backbones import build_backbone
from als4gan.models.normalize import Normalize


class ASPPv2(nn.Module):
    """DeepLab-v2 classifier: parallel dilated 3x3 convolutions to class scores, summed.

    Args:
        in_channels: Backbone channels.
        num_classes: Output classes.
        rates: Dilation rates (paper: 6, 12, 18, 24).
    """

    def __init__(
        self, in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24)
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=rate, dilation=rate, bias=True)
            for rate in rates
        )
        for conv in self.branches:
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of the branches."""
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out  # type: ignore[no-any-return]


class DeepLabV2(nn.Module):
    """DeepLab-v2: dilated backbone (output stride 8) + ASPP, logits upsampled to the input size.

    Takes images in [0, 1] (normalised inside). Parameter groups for the optimiser are given by
    :meth:`backbone_parameters` and :meth:`head_parameters` (the head gets 10x /
    20x lr, docs/method.md).

    Args:
        backbone: Backbone name (see :data:`als4gan.models.backbones.BACKBONES`).
        num_classes: Number of classes.
        in_channels: Input bands.
        rates: ASPP dilation rates.
        output_stride: 8 (the paper's) or 16 (cheaper).
        multi_scale: MSC inputs: also run at 0.75x and 0.5x and fuse by max (eval and train).
    """

    def __init__(
        self,
        backbone: str = "resnet101",
        num_classes: int = 6,
        in_channels: int = 3,
        rates: Sequence[int] = (6, 12, 18, 24),
        output_stride: int = 8,
        multi_scale: bool = False,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        self.normalize = Normalize(in_channels)
        self.backbone = build_backbone(backbone, in_channels, output_stride, segmentation=True)
        self.classifier = ASPPv2(self.backbone.out_channels, num_classes, rates)
        self.num_classes = num_classes
        self.multi_scale = multi_scale

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder features ``{"out": ...}`` of images (B, C, H, W) in [0, 1] (one scale).

        With :meth:`decode`, the two halves of a single-scale forward pass: a method can
        change the features in between (UniMatch's feature perturbation, docs/training.md).
        """
        return {"out": self.backbone.forward_features(self.normalize(x))["out"]}

    def decode(self, features: dict[str, torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """Class logits at ``size`` (H, W) from :meth:`encode`'s features."""
        logits = self.classifier(features["out"])
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)

    def _single_scale(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encode(x)["out"])  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of shape (B, num_classes, H, W) for images (B, C, H, W) in [0, 1]."""
        size = x.shape[-2:]
        logits = self._single_scale(x)
        if self.multi_scale:
            fused = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            for scale in (0.75, 0.5):
                scaled = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
                out = F.interpolate(
                    self._single_scale(scaled), size=size, mode="bilinear", align_corners=False
                )
                fused = torch.maximum(fused, out)
            return fused
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at the base learning rate."""
        return list(self.backbone.parameters())

    def head_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(weights, biases) of the classifier head (10x and 20x lr in the paper)."""
        weights = [p for n, p in self.classifier.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.classifier.named_parameters() if n.endswith("bias")]
        return weights, biases
